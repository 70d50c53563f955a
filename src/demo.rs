//! `zgate demo`: the whole mission in one process on loopback, narrated. A simulated
//! DS8000, an emulated z/OS system and z/TPF complex (driving that DS8000), the
//! gateway with its store and its CSM listener over TLS, and three CSM users (admin,
//! an operator, an approver) who go through: PassTicket logons; a FlashCopy session
//! with Inhibit Target Writes and Minimum Time Frame per Flash; background copy to
//! IWNR2772I; Safeguarded Copy backups through z/TPF; a manual expire refused, then
//! allowed; dual control in Safeguarded Copy mode with a recover checked against the
//! backup's point in time; an operator refused an ungranted action; an active/standby
//! pair; Metro Mirror with HyperSwap through z/OS (a planned swap with the applications
//! writing, then an unplanned one); the audit trail verified. The steps stop at the
//! first failure, naming it.
//!
//! `zgate demo` runs it on the system clock; `tests/demo_steps.rs` runs it once on
//! tokio's paused clock and checks what each step shows, naming the step that fails.

use std::sync::Mutex;
use std::time::Duration;

use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::client::csm::{self, Authentication, ConnectorEvent, CsmConnectorConfig, CsmHandle};
use crate::clock::Clock;
use crate::ds8k::VolumeId;
use crate::gateway::service::{ServeConfig, Service};
use crate::passticket::{EnhancedGenerator, EnhancedKey, TicketType};
use crate::peer::ds8k::{Ds8kService, Ds8kServiceConfig};
use crate::peer::zos::{ZosPeer, ZosPeerConfig};
use crate::peer::ztpf::{ZtpfPeer, ZtpfPeerConfig};
use crate::proto::ReturnCode;
use crate::proto::csm::CsmBody;
use crate::proto::logon::Credential;
use crate::sim::hmc::Ds8kSystem;
use crate::tls::ClientTls;

/// How to run the demo.
#[derive(Debug, Clone, Copy)]
pub struct DemoOptions {
    /// Leave the gateway up on 127.0.0.1:9560 with state in ./zgate-demo (needs
    /// ZGATE_ADMIN_PASSWORD, the admin's password).
    pub keep: bool,
    /// The one clock (the system's; a test's follows tokio's paused clock).
    pub clock: Clock,
    /// Print the narration as it goes (besides keeping it in [`World::lines`]).
    pub echo: bool,
    /// Run steps 1 to this one (11: all; the audit check runs with [`World::finish`]).
    pub last_step: u8,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            keep: false,
            clock: Clock::system(),
            echo: true,
            last_step: 11,
        }
    }
}

const SERIAL: &str = "75FA120";
const HMC_PASSWORD: &str = "HMCPASS1";
/// The sample's cheap hash of HMCPASS1 (testdata/peers/ds8k.toml).
const HMC_HASH: &str = "$argon2id$v=19$m=256,t=1,p=1$kRd/U8sgFOmPpaBmHHTNrg$OjZACu3IWHR/84qOt5kl5rNbS+7vVxiX/y5BD1kBmNY";

fn ds8k_config() -> String {
    format!(
        r#"listen = "127.0.0.1:0"
image = "IBM.2107-{SERIAL}"
hmc = "HMC1"
tick_ms = 100
[limits]
allow_plaintext_passwords = true
[storage]
copy_tracks_per_sec = 300
[[volumes]]
ids = "3000-3007"
ckd_cylinders = 100
name = "PROD"
safeguarded_percent = 50
[[volumes]]
ids = "3100-3107"
ckd_cylinders = 100
name = "FC"
[[volumes]]
ids = "3200-3207"
ckd_cylinders = 100
name = "RECOV"
[[users]]
user = "CSMADMIN"
password_hash = "{HMC_HASH}"
"#
    )
}

/// Step 10's Metro Mirror complex: H1 and H2, each behind its own HMC listener.
const MM_H1: &str = "75FA130";
const MM_H2: &str = "75FA131";
/// Step 10's mirrored volumes (the same ids on H1 and H2).
const MM_VOLUMES: [u16; 4] = [0x4000, 0x4001, 0x4002, 0x4003];

fn complex_config() -> String {
    format!(
        r#"listen = "127.0.0.1:0"
image = "IBM.2107-{MM_H1}"
hmc = "HMC3"
tick_ms = 100
[limits]
allow_plaintext_passwords = true
[mirror]
copy_tracks_per_sec = 20000
[[volumes]]
ids = "4000-4003"
ckd_cylinders = 100
name = "DB2PROD"
[[users]]
user = "CSMADMIN"
password_hash = "{HMC_HASH}"
[[remote]]
listen = "127.0.0.1:0"
image = "IBM.2107-{MM_H2}"
hmc = "HMC4"
[[remote.volumes]]
ids = "4000-4003"
ckd_cylinders = 100
name = "DB2MIRR"
[[remote.users]]
user = "CSMADMIN"
password_hash = "{HMC_HASH}"
"#
    )
}

/// SYSA's links to step 10's images, for HyperSwap, and its applications.
fn hyperswap_tables(h1: std::net::SocketAddr, h2: std::net::SocketAddr) -> String {
    let mut out = String::new();
    for (addr, serial) in [(h1, MM_H1), (h2, MM_H2)] {
        out += &format!(
            "\n[[hyperswap_storage]]\naddr = \"{addr}\"\nimage = \"IBM.2107-{serial}\"\nuser = \"CSMADMIN\"\npassword_env = \"DEMO_HMC_PASSWORD\"\nrequest_timeout_secs = 2\n"
        );
    }
    out + "\n[workload]\nwrites_per_sec = 100\ntracks = 15\n"
}

fn storage_table(addr: std::net::SocketAddr) -> String {
    format!(
        "\n[storage]\naddr = \"{addr}\"\nimage = \"IBM.2107-{SERIAL}\"\nuser = \"CSMADMIN\"\npassword_env = \"DEMO_HMC_PASSWORD\"\n"
    )
}

fn zos_config(storage: std::net::SocketAddr) -> String {
    r#"listen = "127.0.0.1:0"
sysplex = "PLEX1"
system = "SYSA"
level = "V2R5"
[[users]]
user = "HOSTUSR"
permits = ["FLASH", "SGC_BACKUP", "HYPERSWAP"]
[[users]]
user = "SYSPROG"
[[ptktdata]]
name = "IOSHMCSM"
enhanced_key_env = "DEMO_ZOS_KEY"
ticket_type = "upper"
replay_protection = true
"#
    .to_owned()
        + &storage_table(storage)
}

fn ztpf_config(storage: std::net::SocketAddr) -> String {
    format!(
        r#"listen = "127.0.0.1:0"
complex = "TPFPROD"
system = "CPUA"
level = "PUT23"
subsystem = "BSS"
attached = ["{SERIAL}:3000-30FF", "{SERIAL}:3100-31FF", "{SERIAL}:3200-32FF"]
[[users]]
user = "CSMTPF"
permits = ["FLASH", "SGC_BACKUP"]
[[users]]
user = "SYSPROG"
[[ptktdata]]
name = "ZTPFCSM"
enhanced_key_env = "DEMO_ZTPF_KEY"
ticket_type = "upper"
"#
    ) + &storage_table(storage)
}

fn random_hex(bytes: usize) -> Result<Zeroizing<String>, String> {
    let mut b = Zeroizing::new(vec![0u8; bytes]);
    getrandom::getrandom(&mut b).map_err(|_| "no randomness".to_owned())?;
    Ok(Zeroizing::new(hex::encode_upper(&*b)))
}

fn vol(v: u16) -> String {
    format!("DS8000:2107.{SERIAL}:VOL:{v:04X}")
}

/// Everything the demo runs, on loopback.
pub struct World {
    ds8k: Ds8kService,
    complex: Ds8kService,
    zos: ZosPeer,
    hyperswap: std::sync::Arc<crate::peer::hyperswap::HyperSwapIo>,
    ztpf: ZtpfPeer,
    service: Service,
    ca: Vec<u8>,
    zos_key: Zeroizing<String>,
    ztpf_key: Zeroizing<String>,
    admin_password: Zeroizing<String>,
    _dir: Option<tempfile::TempDir>,
    store: std::path::PathBuf,
    narrator: Narrator,
}

/// Where the narration goes.
struct Narrator {
    options: DemoOptions,
    lines: Mutex<Vec<String>>,
}

impl Narrator {
    fn line(&self, line: String) {
        if self.options.echo {
            println!("{line}");
        }
        if let Ok(mut lines) = self.lines.lock() {
            lines.push(line);
        }
    }

    fn say(&self, step: &str) {
        if self.options.echo {
            println!();
        }
        self.line(format!("== {step}"));
    }

    fn ok(&self, what: impl std::fmt::Display) {
        self.line(format!("   ok  {what}"));
    }
}

/// Step 10's complex of two images, on `clock`.
async fn start_complex(cfg: &Ds8kServiceConfig, clock: Clock) -> Result<Ds8kService, String> {
    let remote = cfg.remote.first().ok_or("no [[remote]] image")?;
    let mut systems =
        Ds8kSystem::complex_with_keys(&[&cfg.system, &remote.system], cfg.mirror.clone(), |_| None)
            .map_err(|e| e.to_string())?;
    let (Some(h2), Some(h1)) = (systems.pop(), systems.pop()) else {
        return Err("the complex has two images".into());
    };
    let mut listen = cfg.listen_config().map_err(|e| e.to_string())?;
    listen.clock = clock;
    let mut remote_listen = listen.clone();
    remote_listen.listen = remote.listen;
    Ds8kService::start_complex(listen, vec![(remote_listen, h2)], cfg, h1)
        .await
        .map_err(|e| e.to_string())
}

/// Starts the DS8000s, z/OS, z/TPF and the gateway on loopback.
pub async fn start(options: DemoOptions) -> Result<World, String> {
    let DemoOptions { keep, clock, .. } = options;
    let zos_key = random_hex(32)?;
    let ztpf_key = random_hex(32)?;
    let admin_password = match std::env::var("ZGATE_ADMIN_PASSWORD") {
        Ok(p) => Zeroizing::new(p),
        Err(_) if keep => {
            return Err("setup: --keep needs ZGATE_ADMIN_PASSWORD (the admin's password)".into());
        }
        Err(_) => random_hex(12)?,
    };
    let cfg: Ds8kServiceConfig =
        toml::from_str(&ds8k_config()).map_err(|e| format!("setup: {e}"))?;
    let mut listen = cfg
        .listen_config()
        .map_err(|e| format!("setup: DS8000: {e}"))?;
    listen.clock = clock;
    let system =
        Ds8kSystem::with_keys(&cfg.system, |_| None).map_err(|e| format!("setup: DS8000: {e}"))?;
    let ds8k = Ds8kService::start_on(listen, &cfg, system)
        .await
        .map_err(|e| format!("setup: DS8000: {e}"))?;
    let ccfg: Ds8kServiceConfig =
        toml::from_str(&complex_config()).map_err(|e| format!("setup: {e}"))?;
    let complex = start_complex(&ccfg, clock)
        .await
        .map_err(|e| format!("setup: Metro Mirror complex: {e}"))?;
    let h2_addr = complex
        .remote_addrs()
        .first()
        .copied()
        .ok_or("setup: the complex has no H2")?;
    let (zk, tk) = (zos_key.clone(), ztpf_key.clone());
    let env = move |v: &str| match v {
        "DEMO_ZOS_KEY" => Some(zk.to_string()),
        "DEMO_ZTPF_KEY" => Some(tk.to_string()),
        "DEMO_HMC_PASSWORD" => Some(HMC_PASSWORD.to_owned()),
        _ => None,
    };
    let zcfg: ZosPeerConfig =
        toml::from_str(&(zos_config(ds8k.addr()) + &hyperswap_tables(complex.addr(), h2_addr)))
            .map_err(|e| format!("setup: {e}"))?;
    let (zos, hyperswap) = ZosPeer::with_hyperswap_io(zcfg, &env, clock)
        .await
        .map_err(|e| format!("setup: z/OS: {e}"))?;
    let hyperswap = hyperswap.ok_or("setup: SYSA has no HyperSwap on storage")?;
    let tcfg: ZtpfPeerConfig =
        toml::from_str(&ztpf_config(ds8k.addr())).map_err(|e| format!("setup: {e}"))?;
    let ztpf = ZtpfPeer::from_config_with(tcfg, &env, clock)
        .await
        .map_err(|e| format!("setup: z/TPF: {e}"))?;
    let (dir, store_dir) = if keep {
        (None, std::path::PathBuf::from("zgate-demo"))
    } else {
        let d = tempfile::tempdir().map_err(|e| format!("setup: {e}"))?;
        let p = d.path().to_owned();
        (Some(d), p)
    };
    let mut config = ServeConfig::default();
    config.csm.listen = if keep {
        "127.0.0.1:9560"
    } else {
        "127.0.0.1:0"
    }
    .parse()
    .map_err(|_| "setup: address")?;
    config.rest.listen = if keep {
        "127.0.0.1:9559"
    } else {
        "127.0.0.1:0"
    }
    .parse()
    .map_err(|_| "setup: address")?;
    config.ha.listen = if keep {
        "127.0.0.1:9561"
    } else {
        "127.0.0.1:0"
    }
    .parse()
    .map_err(|_| "setup: address")?;
    config.store.dir = store_dir.clone();
    config.policy.copy_poll_secs = 1;
    let pw = admin_password.clone();
    let env = move |v: &str| (v == "ZGATE_ADMIN_PASSWORD").then(|| pw.to_string());
    let service = Service::start(&config, &env, clock)
        .await
        .map_err(|e| format!("setup: gateway: {e}"))?;
    let ca_file = service.ca_file.clone().ok_or("setup: no CA")?;
    let ca = std::fs::read(&ca_file).map_err(|e| format!("setup: {e}"))?;
    Ok(World {
        ds8k,
        complex,
        zos,
        hyperswap,
        ztpf,
        service,
        ca,
        zos_key,
        ztpf_key,
        admin_password,
        _dir: dir,
        store: store_dir.join("zgate.redb"),
        narrator: Narrator {
            options,
            lines: Mutex::new(Vec::new()),
        },
    })
}

impl World {
    /// The narration so far, a line each (step headings start with `== `).
    pub fn lines(&self) -> Vec<String> {
        self.narrator
            .lines
            .lock()
            .map(|l| l.clone())
            .unwrap_or_default()
    }

    /// The gateway.
    pub fn service(&self) -> &Service {
        &self.service
    }

    fn say(&self, step: &str) {
        self.narrator.say(step);
    }

    fn ok(&self, what: impl std::fmt::Display) {
        self.narrator.ok(what);
    }

    /// Heads step `n` if the run includes it.
    fn begin(&self, n: u8, title: &str) -> bool {
        if n > self.narrator.options.last_step {
            return false;
        }
        self.say(&format!("{n}. {title}"));
        true
    }

    async fn connect(&self, user: &str, password: &str) -> Result<CsmHandle, String> {
        let mut c = CsmConnectorConfig::new(self.service.addr());
        c.user = user.into();
        c.appl = "CSM".into();
        c.max_logon_refusals = 1;
        c.request_timeout = Duration::from_secs(60);
        c.clock = self.narrator.options.clock;
        c.tls = Some(ClientTls::from_pem(&self.ca, "localhost", None).map_err(|e| e.to_string())?);
        let cred = Credential::new(password).ok_or("bad password")?;
        let auth = if password.len() > 8 {
            Authentication::Passphrase(cred)
        } else {
            Authentication::Password(cred)
        };
        let mut h = csm::spawn(c, auth).map_err(|e| e.to_string())?;
        loop {
            match tokio::time::timeout(Duration::from_secs(10), h.next_event()).await {
                Ok(Some(ConnectorEvent::Connected { .. })) => {
                    csm::subscribe(&h, true)
                        .await
                        .map_err(|e| format!("{user}: console subscription: {e}"))?;
                    return Ok(h);
                }
                Ok(Some(ConnectorEvent::GaveUp { status, .. })) => {
                    return Err(format!("{user}'s logon refused ({:#06x})", status.reason));
                }
                Ok(Some(_)) => {}
                _ => return Err(format!("{user}: no logon")),
            }
        }
    }

    fn now_ms(&self) -> u64 {
        self.ds8k.control().clock().unix_millis()
    }

    fn write(&self, v: u16, track: u32, tag: u64) -> Result<(), String> {
        let now = self.now_ms();
        self.ds8k
            .control()
            .system()
            .image_mut()
            .write_track(now, VolumeId(v), track, tag)
            .map_err(|e| e.to_string())
    }

    fn read(&self, v: u16, track: u32) -> Result<u64, String> {
        self.ds8k
            .control()
            .system()
            .image()
            .read_track(VolumeId(v), track)
            .map_err(|e| e.to_string())
    }
}

/// Sends one operation; the reply must have RC `rc`.
async fn expect(h: &CsmHandle, rc: ReturnCode, request: Value) -> Result<Value, String> {
    let (status, v) = csm::call(h, &request).await.map_err(|e| e.to_string())?;
    if status.rc != rc {
        return Err(format!(
            "{} answered rc {} reason {:#06x}: {}",
            request["op"], status.rc.0, status.reason, v["msgTranslated"]
        ));
    }
    Ok(v)
}

async fn done(h: &CsmHandle, request: Value) -> Result<Value, String> {
    expect(h, ReturnCode::OK, request).await
}

/// Waits for console message `id` about `session` whose text holds `holds`.
async fn console(h: &mut CsmHandle, id: &str, session: &str, holds: &str) -> Result<Value, String> {
    tokio::time::timeout(Duration::from_secs(40), async {
        loop {
            match h.next_event().await {
                Some(ConnectorEvent::Event(CsmBody::Console { json })) => {
                    let Ok(v) = serde_json::from_str::<Value>(&json) else {
                        continue;
                    };
                    if v["msg"] == id && v["session"] == session && text(&v).contains(holds) {
                        return Ok(v);
                    }
                    if v["session"] == session && v["msg"] == "IWNR8013E" {
                        return Err(text(&v));
                    }
                }
                None => return Err("the connection ended".to_owned()),
                _ => {}
            }
        }
    })
    .await
    .map_err(|_| format!("no {id} for {session} in time"))?
}

fn text_of(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

fn text(v: &Value) -> String {
    v["msgTranslated"].as_str().unwrap_or_default().to_owned()
}

/// Logs on with a fresh PassTicket and says what the connector reported first.
async fn first_event<P: crate::proto::Protocol>(
    config: crate::client::connector::ConnectorConfig,
    auth: crate::client::connector::Authentication,
) -> Result<Option<String>, String> {
    let mut h = crate::client::connector::spawn::<P>(config, auth).map_err(|e| e.to_string())?;
    let e = tokio::time::timeout(Duration::from_secs(10), h.next_event())
        .await
        .ok()
        .flatten();
    h.shutdown().await;
    Ok(e.map(|e| format!("{e:?}")))
}

impl World {
    /// Stops the gateway gracefully and, when step 11 is included, verifies the
    /// audit trail in the store it left; then stops the peers. Returns the whole
    /// narration.
    pub async fn finish(self) -> Result<Vec<String>, String> {
        let World {
            ds8k,
            complex,
            zos,
            ztpf,
            service,
            store,
            narrator,
            _dir,
            ..
        } = self;
        service.shutdown().await;
        if narrator.options.last_step >= 11 {
            narrator.say("11. The audit trail is verified");
            let entries = crate::store::Store::open(&store)
                .and_then(|s| s.audit_entries())
                .map_err(|e| format!("step 11 (audit): {e}"))?;
            let head =
                crate::policy::audit::verify(crate::policy::audit::Head::GENESIS, &entries, None)
                    .map_err(|e| format!("step 11 (audit): {e}"))?;
            narrator.ok(format!(
                "{} audit entries, hash-chained, verified; head {}",
                entries.len(),
                hex::encode(&head.hash[..8])
            ));
        }
        zos.shutdown().await;
        ztpf.shutdown().await;
        ds8k.shutdown().await;
        complex.shutdown().await;
        Ok(narrator.lines.into_inner().unwrap_or_default())
    }
}

/// Runs steps 1 to `last_step` (at most 10; step 11 is in [`World::finish`]).
pub async fn steps(w: &World) -> Result<(), String> {
    fn step(n: &'static str) -> impl Fn(String) -> String {
        move |e| format!("step {n}: {e}")
    }

    if !w.begin(1, "PassTicket logons to z/OS and z/TPF") {
        return Ok(());
    }
    for (name, addr, user, appl, key, zos) in [
        (
            "SYSA",
            w.zos.addr(),
            "SYSPROG",
            "IOSHMCSM",
            &w.zos_key,
            true,
        ),
        (
            "TPFPROD",
            w.ztpf.addr(),
            "SYSPROG",
            "ZTPFCSM",
            &w.ztpf_key,
            false,
        ),
    ] {
        let generator = EnhancedGenerator::new(
            &EnhancedKey::from_hex(key).map_err(|e| step("1")(e.to_string()))?,
            TicketType::Upper,
        );
        let mut c = crate::client::connector::ConnectorConfig::new(addr);
        c.clock = w.narrator.options.clock;
        c.user = user.into();
        c.appl = appl.into();
        let auth = crate::client::connector::Authentication::EnhancedPassTicket(generator);
        let event = if zos {
            first_event::<crate::proto::zos::Zos>(c, auth).await
        } else {
            first_event::<crate::proto::ztpf::Ztpf>(c, auth).await
        }
        .map_err(step("1"))?;
        match event {
            Some(e) if e.starts_with("Connected") => w.ok(format!(
                "{user} logged on to {name} with a fresh enhanced PassTicket"
            )),
            other => return Err(step("1")(format!("{name}: {other:?}"))),
        }
    }

    let mut admin = w
        .connect("admin", &w.admin_password)
        .await
        .map_err(step("setup"))?;
    let s = step("setup");
    done(&admin, json!({"op": "storage.add", "serial": SERIAL, "address": w.ds8k.addr().to_string(), "user": "CSMADMIN", "password": HMC_PASSWORD})).await.map_err(&s)?;
    done(&admin, json!({"op": "host.add", "system": "SYSA", "kind": "zos", "address": "127.0.0.1", "port": w.zos.addr().port(), "user": "HOSTUSR", "passticket_key": *w.zos_key, "application": "IOSHMCSM"})).await.map_err(&s)?;
    done(&admin, json!({"op": "host.add", "system": "TPFPROD", "kind": "ztpf", "address": "127.0.0.1", "port": w.ztpf.addr().port(), "user": "CSMTPF", "passticket_key": *w.ztpf_key, "application": "ZTPFCSM"})).await.map_err(&s)?;
    let oper_pw = random_hex(8).map_err(&s)?;
    let appr_pw = random_hex(8).map_err(&s)?;
    done(&admin, json!({"op": "user.create", "name": "operator", "role": "Operator", "password": *oper_pw, "sessions": ["SGC1"], "actions": ["Backup", "Recover Backup", "Refresh States"]})).await.map_err(&s)?;
    done(&admin, json!({"op": "user.create", "name": "approver", "role": "Administrator", "password": *appr_pw})).await.map_err(&s)?;
    w.ok(
        "DS8000 2107.75FA120, host connections SYSA (z/OS) and TPFPROD (z/TPF), users admin, operator, approver",
    );

    if !w.begin(
        2,
        "FlashCopy session FC1 through SYSA with Inhibit Target Writes",
    ) {
        return Ok(());
    }
    let s = step("2");
    done(
        &admin,
        json!({"op": "session.create", "name": "FC1", "type": "FC", "description": "nightly copy"}),
    )
    .await
    .map_err(&s)?;
    done(&admin, json!({"op": "session.copysets.add", "name": "FC1", "copysets": [[vol(0x3000), vol(0x3100)], [vol(0x3001), vol(0x3101)]]})).await.map_err(&s)?;
    console(&mut admin, "IWNR8001I", "FC1", "copy sets were added")
        .await
        .map_err(&s)?;
    done(&admin, json!({"op": "session.options", "name": "FC1", "options": {"inhibit_target_writes": true, "min_flash_interval_mins": 30, "system": "SYSA"}})).await.map_err(&s)?;
    w.write(0x3000, 9, 1001).map_err(&s)?;
    done(
        &admin,
        json!({"op": "session.run", "name": "FC1", "cmd": "Flash"}),
    )
    .await
    .map_err(&s)?;
    let m = console(&mut admin, "IWNR1026I", "FC1", "Flash command")
        .await
        .map_err(&s)?;
    w.ok(text(&m));
    match w.write(0x3100, 0, 7) {
        Err(e) => w.ok(format!("a host write to target 3100 is refused: {e}")),
        Ok(()) => return Err(s("a host write to an inhibited target was allowed".into())),
    }

    if !w.begin(3, "Minimum Time Frame per Flash (30 minutes)") {
        return Ok(());
    }
    let v = expect(
        &admin,
        ReturnCode::REFUSED,
        json!({"op": "session.run", "name": "FC1", "cmd": "Flash"}),
    )
    .await
    .map_err(step("3"))?;
    w.ok(format!("second Flash refused: {}", text(&v)));

    if !w.begin(4, "Background copy until IWNR2772I") {
        return Ok(());
    }
    let s = step("4");
    let mut shown = None;
    let done_msg = loop {
        tokio::select! {
            m = console(&mut admin, "IWNR2772I", "FC1", "") => break m.map_err(&s)?,
            () = tokio::time::sleep(Duration::from_millis(700)) => {}
        }
        let v = done(&admin, json!({"op": "session.get", "name": "FC1"}))
            .await
            .map_err(&s)?;
        let left = v["result"]["progress_out_of_sync_tracks"].as_u64();
        if left != shown {
            if let Some(l) = left {
                w.narrator.line(format!("   ..  {l} tracks still to copy"));
            }
            shown = left;
        }
    };
    w.ok(text(&done_msg));
    if w.read(0x3100, 9).map_err(&s)? != 1001 {
        return Err(s("the target does not hold the source's data".into()));
    }
    w.ok("target 3100 holds the source's point in time");

    if !w.begin(
        5,
        "Safeguarded Copy session SGC1 taking backups through z/TPF",
    ) {
        return Ok(());
    }
    let s = step("5");
    done(
        &admin,
        json!({"op": "session.create", "name": "SGC1", "type": "SGC"}),
    )
    .await
    .map_err(&s)?;
    done(&admin, json!({"op": "session.copysets.add", "name": "SGC1", "copysets": [[vol(0x3002), vol(0x3200)]]})).await.map_err(&s)?;
    console(&mut admin, "IWNR8001I", "SGC1", "copy sets were added")
        .await
        .map_err(&s)?;
    done(
        &admin,
        json!({"op": "session.options", "name": "SGC1", "options": {"system": "TPFPROD"}}),
    )
    .await
    .map_err(&s)?;
    let mut tags = Vec::new();
    for tag in [501u64, 502, 503] {
        w.write(0x3002, 5, tag).map_err(&s)?;
        done(
            &admin,
            json!({"op": "session.run", "name": "SGC1", "cmd": "Backup"}),
        )
        .await
        .map_err(&s)?;
        let m = console(&mut admin, "IWNR1026I", "SGC1", "Backup command")
            .await
            .map_err(&s)?;
        w.ok(text(&m));
        tags.push(tag);
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    w.write(0x3002, 5, 999).map_err(&s)?;
    let v = done(&admin, json!({"op": "session.get", "name": "SGC1"}))
        .await
        .map_err(&s)?;
    let ids: Vec<u64> = v["result"]["backups"]
        .as_array()
        .map(|b| b.iter().filter_map(|x| x["backupID"].as_u64()).collect())
        .unwrap_or_default();
    if ids.len() != 3 {
        return Err(s(format!("expected 3 backups, found {ids:?}")));
    }

    if !w.begin(
        6,
        "Manual expire: refused by default, allowed by the property",
    ) {
        return Ok(());
    }
    let s = step("6");
    let v = expect(
        &admin,
        ReturnCode::REFUSED,
        json!({"op": "session.run", "name": "SGC1", "cmd": "Expire Backup", "backup": ids[0]}),
    )
    .await
    .map_err(&s)?;
    w.ok(format!("refused: {}", text(&v)));
    done(&admin, json!({"op": "session.options", "name": "SGC1", "options": {"system": "TPFPROD", "allow_manual_expire": true, "min_backups": 2}})).await.map_err(&s)?;
    done(
        &admin,
        json!({"op": "session.run", "name": "SGC1", "cmd": "Expire Backup", "backup": ids[0]}),
    )
    .await
    .map_err(&s)?;
    let m = console(&mut admin, "IWNR1026I", "SGC1", "Expire Backup")
        .await
        .map_err(&s)?;
    w.ok(text(&m));

    if !w.begin(
        7,
        "Dual control in Safeguarded Copy mode: a recover needs a second user",
    ) {
        return Ok(());
    }
    let s = step("7");
    let v = expect(
        &admin,
        ReturnCode::WARNING,
        json!({"op": "dualcontrol.set", "mode": "sgc"}),
    )
    .await
    .map_err(&s)?;
    let approver = w.connect("approver", &appr_pw).await.map_err(&s)?;
    done(
        &approver,
        json!({"op": "dualcontrol.approve", "id": v["request"]}),
    )
    .await
    .map_err(&s)?;
    w.ok("Safeguarded Copy Dual Control Mode: asked by admin, approved by approver");
    let oper = w.connect("operator", &oper_pw).await.map_err(&s)?;
    let v = expect(
        &oper,
        ReturnCode::WARNING,
        json!({"op": "session.run", "name": "SGC1", "cmd": "Recover Backup", "backup": ids[1]}),
    )
    .await
    .map_err(&s)?;
    w.ok(format!("operator's recover held: {}", text(&v)));
    done(
        &approver,
        json!({"op": "dualcontrol.approve", "id": v["request"]}),
    )
    .await
    .map_err(&s)?;
    let m = console(&mut admin, "IWNR1026I", "SGC1", "Recover Backup")
        .await
        .map_err(&s)?;
    w.ok(format!("approved by approver: {}", text(&m)));
    let recovered = w.read(0x3200, 5).map_err(&s)?;
    if recovered != tags[1] {
        return Err(s(format!(
            "R1 reads {recovered}, the backup's point in time was {}",
            tags[1]
        )));
    }
    w.ok(format!(
        "R1 3200 holds the backup's point in time (track 5 = {recovered}; production now {})",
        w.read(0x3002, 5).map_err(&s)?
    ));

    if !w.begin(8, "An operator refused an ungranted action") {
        return Ok(());
    }
    let v = expect(
        &oper,
        ReturnCode::REFUSED,
        json!({"op": "session.run", "name": "SGC1", "cmd": "Expire Backup", "backup": ids[1]}),
    )
    .await
    .map_err(step("8"))?;
    w.ok(text(&v));
    let v = expect(
        &oper,
        ReturnCode::REFUSED,
        json!({"op": "session.run", "name": "FC1", "cmd": "Terminate"}),
    )
    .await
    .map_err(step("8"))?;
    w.ok(text(&v));
    let hosts = done(&admin, json!({"op": "host.list"}))
        .await
        .map_err(step("8"))?;
    for h in hosts["result"].as_array().into_iter().flatten() {
        w.ok(format!(
            "the gateway's link to {}: {} logon(s), {}, connected {}",
            text_of(&h["system"]),
            h["logons"],
            text_of(&h["credential"]),
            h["connected"]
        ));
    }
    oper.shutdown().await;
    approver.shutdown().await;
    if w.begin(9, "An active/standby pair: a standby, a takeover, and back") {
        ha_step(w, &mut admin).await.map_err(step("9"))?;
    }
    if w.begin(
        10,
        "Metro Mirror with HyperSwap through SYSA: a planned swap, then an unplanned one",
    ) {
        hyperswap_step(w, &mut admin).await.map_err(step("10"))?;
    }
    admin.shutdown().await;
    Ok(())
}

/// Step 10 (policy.md §5.8): session MM1 mirrors H1 to H2 with HyperSwap through
/// SYSA while SYSA's applications write; a planned HyperSwap holds their I/O once
/// and loses nothing; Start H2->H1 mirrors back; then H2 stops answering SYSA and
/// z/OS swaps back to H1 on its own, and the session says so.
async fn hyperswap_step(w: &World, admin: &mut CsmHandle) -> Result<(), String> {
    let h2 = w.complex.remote_addrs().first().copied().ok_or("no H2")?;
    for (serial, addr) in [(MM_H1, w.complex.addr()), (MM_H2, h2)] {
        done(admin, json!({"op": "storage.add", "serial": serial, "address": addr.to_string(), "user": "CSMADMIN", "password": HMC_PASSWORD})).await?;
    }
    done(
        admin,
        json!({"op": "session.create", "name": "MM1", "type": "MM", "description": "DB2 production, mirrored"}),
    )
    .await?;
    done(admin, json!({"op": "session.options", "name": "MM1", "options": {"hyperswap": true, "system": "SYSA"}})).await?;
    let sets: Vec<Value> = MM_VOLUMES
        .iter()
        .map(|&v| json!([mm_vol(MM_H1, v), mm_vol(MM_H2, v)]))
        .collect();
    done(
        admin,
        json!({"op": "session.copysets.add", "name": "MM1", "copysets": sets}),
    )
    .await?;
    console(admin, "IWNR8001I", "MM1", "copy sets were added").await?;
    done(
        admin,
        json!({"op": "session.run", "name": "MM1", "cmd": "Start H1->H2"}),
    )
    .await?;
    console(admin, "IWNR8017I", "MM1", "Prepared").await?;
    w.ok(format!(
        "MM1 Prepared: 4 pairs {MM_H1} -> {MM_H2} full duplex, HyperSwap loaded and enabled on SYSA"
    ));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let v = done(
        admin,
        json!({"op": "session.run", "name": "MM1", "cmd": "HyperSwap"}),
    )
    .await?;
    if v["msg"] != "IWNR8002I" {
        return Err(format!("HyperSwap: {}", text(&v)));
    }
    let swapped = console(admin, "IWNR1026I", "MM1", "HyperSwap command").await?;
    w.ok(text(&swapped));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let holds: Vec<Duration> = w
        .hyperswap
        .io_holds()
        .lock()
        .map(|h| h.iter().copied().collect())
        .unwrap_or_default();
    let [held] = holds.as_slice() else {
        return Err(format!("I/O was held {} times, not once", holds.len()));
    };
    w.ok(format!(
        "the applications' I/O was held once, for {:.1} ms; they went on writing on H2",
        held.as_secs_f64() * 1000.0
    ));
    let missing = missing_on(w, 1)?;
    if missing > 0 {
        return Err(format!("{missing} acknowledged writes are not on H2"));
    }
    w.ok(format!(
        "every write acknowledged to the applications is on H2 (the last of each of {} tracks)",
        w.hyperswap.acknowledged().len()
    ));
    done(
        admin,
        json!({"op": "session.run", "name": "MM1", "cmd": "Start H2->H1"}),
    )
    .await?;
    console(admin, "IWNR8017I", "MM1", "Prepared").await?;
    w.ok("Start H2->H1: the pairs mirror from H2 back to H1, HyperSwap enabled again");
    // H2's storage stops answering SYSA: its next write fails, and z/OS swaps.
    let h2_control = w.complex.remote_control(0).ok_or("no H2")?;
    h2_control.misbehave(|m| m.silent = true);
    let unplanned = console(admin, "IWNR8031W", "MM1", "unplanned HyperSwap").await;
    h2_control.misbehave(|m| m.silent = false);
    w.ok(text(&unplanned?));
    let row = done(admin, json!({"op": "session.get", "name": "MM1"})).await?;
    let session = &row["result"];
    w.ok(format!(
        "MM1: {}, {}, production {}, HyperSwap {}",
        text_of(&session["state"]),
        text_of(&session["status"]),
        text_of(&session["productionhost"]),
        text_of(&session["hyperswapstatus"])
    ));
    let missing = missing_on(w, 0)?;
    if missing > 0 {
        return Err(format!("{missing} acknowledged writes are not on H1"));
    }
    w.ok("every acknowledged write is on H1 again");
    Ok(())
}

fn mm_vol(serial: &str, v: u16) -> String {
    format!("DS8000:2107.{serial}:VOL:{v:04X}")
}

/// How many writes acknowledged to SYSA's applications image `site` (0: H1, 1:
/// H2) of step 10's complex does not hold.
fn missing_on(w: &World, site: usize) -> Result<usize, String> {
    let control = if site == 0 {
        w.complex.control()
    } else {
        w.complex.remote_control(0).ok_or("no H2")?
    };
    let system = control.system();
    let image = system.image();
    let mut missing = 0;
    for ((pair, track), tag) in w.hyperswap.acknowledged() {
        let volume = *MM_VOLUMES.get(pair).ok_or("a write to no volume")?;
        if image.read_track(VolumeId(volume), track).ok() != Some(tag) {
            missing += 1;
        }
    }
    Ok(missing)
}

/// Step 9 (ha.md): a standby made for the gateway, synchronised; a Flash whose
/// background copy runs across a takeover by the standby (IWNR2772I comes once, from
/// whichever server sees the copy end); the old active fenced; then the gateway
/// takes over again and the relationship is removed, so that it ends as it began.
async fn ha_step(w: &World, admin: &mut CsmHandle) -> Result<(), String> {
    let clock = w.narrator.options.clock;
    let standby_dir = w
        .store
        .parent()
        .ok_or("no store directory")?
        .join("standby");
    let mut config = ServeConfig::default();
    let any: std::net::SocketAddr = "127.0.0.1:0".parse().map_err(|_| "address")?;
    config.csm.listen = any;
    config.rest.enabled = false;
    config.ha.listen = any;
    config.ha.heartbeat_ms = 1000;
    config.ha.dead_after_ms = 30_000;
    config.policy.copy_poll_secs = 1;
    config.store.dir = standby_dir;
    // ha.md §2.3: the pair shares the sealing key.
    config.store.key_file = Some(
        w.store
            .parent()
            .ok_or("no store directory")?
            .join("sealing.key"),
    );
    let pw = w.admin_password.clone();
    let env = move |v: &str| (v == "ZGATE_ADMIN_PASSWORD").then(|| pw.to_string());
    let standby = Service::start(&config, &env, clock)
        .await
        .map_err(|e| format!("standby: {e}"))?;
    let result = ha_story(w, admin, &standby).await;
    standby.shutdown().await;
    result
}

async fn ha_story(w: &World, admin: &mut CsmHandle, standby: &Service) -> Result<(), String> {
    let b_ha = standby.ha_addr().ok_or("the standby has no HA listener")?;
    let a = w.service.ha().ok_or("the gateway has no HA listener")?;
    let b = standby.ha().ok_or("the standby has no HA listener")?;
    let mut on_active = w.service.gateway().console();
    let v = done(
        admin,
        json!({"op": "ha.set_standby", "server": b_ha.to_string(), "user": "admin",
               "password": w.admin_password.to_string()}),
    )
    .await?;
    w.ok(text(&v["result"]));
    tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            match on_active.recv().await {
                Ok(m) if m.id == crate::policy::console::ids::HA_SYNCHRONIZED => return Ok(()),
                Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                    return Err("the console closed".to_owned());
                }
                _ => {}
            }
        }
    })
    .await
    .map_err(|_| "the standby did not synchronise in time".to_owned())??;
    let on_b = standby
        .gateway()
        .read(|e| e.state().sessions.len())
        .await
        .map_err(|e| e.to_string())?;
    w.ok(format!(
        "the standby is synchronised: it holds the {on_b} sessions, the users, the storage and host definitions, the audit trail"
    ));
    done(
        admin,
        json!({"op": "session.create", "name": "FCHA", "type": "FC", "description": "across a takeover"}),
    )
    .await?;
    done(admin, json!({"op": "session.copysets.add", "name": "FCHA", "copysets": [[vol(0x3004), vol(0x3104)]]})).await?;
    console(admin, "IWNR8001I", "FCHA", "copy sets were added").await?;
    done(
        admin,
        json!({"op": "session.run", "name": "FCHA", "cmd": "Flash"}),
    )
    .await?;
    console(admin, "IWNR1026I", "FCHA", "Flash command in the FCHA").await?;
    w.ok("Flash of FCHA on the active: background copy running");
    let mut on_standby = standby.gateway().console();
    let took = b.takeover().await.map_err(|e| e.to_string())?;
    w.ok(took);
    let mut roles = w.service.gateway().role_changes();
    tokio::time::timeout(
        Duration::from_secs(60),
        roles.wait_for(|r| matches!(r, crate::gateway::ServerRole::Standby { .. })),
    )
    .await
    .map_err(|_| "the old active was not fenced in time".to_owned())?
    .map_err(|e| e.to_string())?;
    w.ok(format!(
        "the old active saw epoch {} and stopped acting (IWNR8105W)",
        b.status().epoch
    ));
    // IWNR2772I once: from the old active before the takeover, or from the new one.
    let mut told = 0;
    let gb = standby.gateway();
    let give_up = w.narrator.options.clock.tokio_now() + Duration::from_secs(60);
    loop {
        let copying = gb
            .read(|e| e.state().sessions.get("FCHA").map(|s| s.copying))
            .await
            .map_err(|e| e.to_string())?;
        while let Ok(m) = on_standby.try_recv() {
            if m.id.to_string() == "IWNR2772I" && m.session.as_deref() == Some("FCHA") {
                told += 1;
            }
        }
        if copying == Some(false) {
            break;
        }
        if w.narrator.options.clock.tokio_now() > give_up {
            return Err("the copy of FCHA did not end on the new active".into());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let by_old = w
        .service
        .gateway()
        .recent_console(1000, Some("FCHA"))
        .iter()
        .filter(|m| m.id.to_string() == "IWNR2772I")
        .count();
    if told + by_old != 1 {
        return Err(format!(
            "IWNR2772I for FCHA told {told} time(s) by the new active and {by_old} by the old"
        ));
    }
    w.ok(format!(
        "FCHA is on the new active, its copy complete; IWNR2772I told once, by the {} active",
        if told == 1 { "new" } else { "old" }
    ));
    // Back: the gateway takes over again, then leaves the relationship.
    let back = a.takeover().await.map_err(|e| e.to_string())?;
    w.ok(back);
    let removed = a
        .remove(&b_ha.to_string())
        .await
        .map_err(|e| e.to_string())?;
    w.ok(removed);
    Ok(())
}
