//! `zgate bench wholebox`: one session over a whole DS8000 (policy.md §5.1).
//!
//! A simulated DS8000 with every volume an image holds (65,280: H1 `0000-7F7F`, their
//! partners `7F80-FEFF`), `zgate serve` in this process (its own runtime, a temp
//! store), and one CSM protocol client over TLS. In turn:
//!
//! 1. an FC session: its 32,640 copy sets imported from a CSV file in parts
//!    (csm.md §3.6) until IWNR8001I; then `Flash` until the command's completion;
//! 2. a small change (the description) and the bytes its records take in the journal;
//! 3. the FC session terminated and removed, an SGC session made of the same volumes
//!    imported the same way, `Backup` until its completion, a second backup, then
//!    `Recover Backup`, `Restore Backup to Production` and `Expire Backup` of the first;
//! 4. that session removed, and one SGC session of every volume of the box (65,280
//!    H1 volumes, no recovery volumes) imported the same way, then `Backup` twice,
//!    `Restore Backup to Production` and `Expire Backup`;
//! 5. `zgate serve` stopped and started again on the same store: the time to serve.
//!
//! Figures only; nothing is asserted.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::{Value, json};
use zgate::client::csm::{self, Authentication, ConnectorEvent, CsmConnectorConfig, CsmHandle};
use zgate::clock::Clock;
use zgate::gateway::service::ServeConfig;
use zgate::peer::ds8k::{Ds8kService, Ds8kServiceConfig};
use zgate::policy::engine::Record;
use zgate::proto::csm::CsmBody;
use zgate::proto::logon::Credential;
use zgate::tls::ClientTls;

use super::bench_cpu::start_zgate_on;

const PASSWORD: &str = "bench-wholebox-pw";
/// Copy sets per import part (as `zgate csm copysets --file` sends them).
const PART: usize = 800;

#[derive(Debug, Clone, Args)]
pub struct WholeBoxBenchArgs {
    /// Copy sets in the session (at most 32,640: a whole image).
    #[arg(long, default_value_t = 32_640)]
    copy_sets: u16,
    /// Directory of the store (on the disk to measure; default the temp dir).
    #[arg(long)]
    dir: Option<std::path::PathBuf>,
}

pub fn wholebox(args: WholeBoxBenchArgs) -> ExitCode {
    super::block_on("bench", run(args))
}

/// The simulated box: `n` H1 volumes from 0000 and their partners from 7F80, small
/// CKD volumes (one cylinder) so that background copy ends quickly; every volume has
/// safeguarded capacity (for the whole-box SGC session), 16 backups each so that the
/// bookkeeping of 65,280 volumes fits the memory budget.
async fn full_box(n: u16) -> Result<Ds8kService, String> {
    let config = format!(
        "listen = \"127.0.0.1:0\"\nimage = \"IBM.2107-75FA120\"\nhmc = \"HMC1\"\n[limits]\nallow_plaintext_passwords = true\n[storage]\ncopy_tracks_per_sec = 100000\nmax_backups_per_volume = 16\n[[volumes]]\nids = \"0000-{:04X}\"\nckd_cylinders = 1\nsafeguarded_percent = 100\n[[volumes]]\nids = \"7F80-{:04X}\"\nckd_cylinders = 1\nsafeguarded_percent = 100\n[[users]]\nuser = \"CSMADMIN\"\npassword_hash = \"$argon2id$v=19$m=256,t=1,p=1$kRd/U8sgFOmPpaBmHHTNrg$OjZACu3IWHR/84qOt5kl5rNbS+7vVxiX/y5BD1kBmNY\"\n",
        n - 1,
        0x7F80 + n - 1
    );
    let cfg: Ds8kServiceConfig = toml::from_str(&config).map_err(|e| e.to_string())?;
    Ds8kService::from_config(cfg)
        .await
        .map_err(|e| e.to_string())
}

async fn connect(addr: std::net::SocketAddr, ca: &[u8]) -> Result<CsmHandle, String> {
    let mut c = CsmConnectorConfig::new(addr);
    c.user = "admin".into();
    c.appl = "CSM".into();
    c.clock = Clock::system();
    c.max_logon_refusals = 1;
    c.request_timeout = Duration::from_secs(120);
    c.tls = Some(ClientTls::from_pem(ca, "localhost", None).map_err(|e| e.to_string())?);
    let credential = Credential::new(PASSWORD).ok_or("credential")?;
    let mut h = csm::spawn(c, Authentication::Passphrase(credential)).map_err(|e| e.to_string())?;
    loop {
        match tokio::time::timeout(Duration::from_secs(30), h.next_event()).await {
            Ok(Some(ConnectorEvent::Connected { .. })) => break,
            Ok(Some(ConnectorEvent::GaveUp { status, .. })) => {
                return Err(format!("logon refused ({:#06x})", status.reason));
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => return Err("no logon in time".into()),
        }
    }
    csm::subscribe(&h, true).await.map_err(|e| e.to_string())?;
    Ok(h)
}

async fn ok(h: &CsmHandle, request: Value) -> Result<Value, String> {
    let (status, v) = csm::call(h, &request).await.map_err(|e| e.to_string())?;
    if status.rc.0 != 0 || v["msg"].as_str().is_some_and(|m| m.ends_with('E')) {
        return Err(format!("{request}: {v}"));
    }
    Ok(v)
}

/// Waits for a console message `id` about `session` whose text holds `text`; an error
/// message about it ends the wait with that message.
async fn console(h: &mut CsmHandle, id: &str, session: &str, text: &str) -> Result<(), String> {
    loop {
        match tokio::time::timeout(Duration::from_secs(600), h.next_event()).await {
            Ok(Some(ConnectorEvent::Event(CsmBody::Console { json }))) => {
                let v: Value = serde_json::from_str(&json).map_err(|e| e.to_string())?;
                if v["session"] != session {
                    continue;
                }
                if v["msg"] == id
                    && v["msgTranslated"]
                        .as_str()
                        .is_some_and(|t| t.contains(text))
                {
                    return Ok(());
                }
                if v["msg"].as_str().is_some_and(|m| m.ends_with('E')) {
                    return Err(format!("{}", v["msgTranslated"]));
                }
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => return Err(format!("no {id} for {session}")),
        }
    }
}

/// Imports `n` copy sets into `session` in parts; the time until IWNR8001I.
async fn import(h: &mut CsmHandle, session: &str, n: u16) -> Result<Duration, String> {
    let sets: Vec<Vec<String>> = (0..n)
        .map(|i| {
            vec![
                format!("DS8000:2107.75FA120:VOL:{i:04X}"),
                format!("DS8000:2107.75FA120:VOL:{:04X}", 0x7F80 + i),
            ]
        })
        .collect();
    import_sets(h, session, &sets).await
}

/// Imports every volume of the box's two ranges (the first `n` of each) into SGC
/// session `session` as H1 volumes alone; the time until IWNR8001I.
async fn import_every_volume(h: &mut CsmHandle, session: &str, n: u16) -> Result<Duration, String> {
    let sets: Vec<Vec<String>> = (0..n)
        .chain(0x7F80..0x7F80 + n)
        .map(|v| vec![format!("DS8000:2107.75FA120:VOL:{v:04X}")])
        .collect();
    import_sets(h, session, &sets).await
}

/// Imports `sets` into `session` in parts; the time until IWNR8001I.
async fn import_sets(
    h: &mut CsmHandle,
    session: &str,
    sets: &[Vec<String>],
) -> Result<Duration, String> {
    let parts: Vec<_> = sets.chunks(PART).collect();
    let t = Instant::now();
    for (i, part) in parts.iter().enumerate() {
        ok(
            h,
            json!({"op": "session.copysets.import", "name": session, "import": "bench",
                   "part": i + 1, "parts": parts.len(), "copysets": part}),
        )
        .await?;
    }
    console(h, "IWNR8001I", session, "copy sets were added").await?;
    Ok(t.elapsed())
}

/// Runs `cmd` on `session`; the time until the command's completion (IWNR1026I).
async fn command(h: &mut CsmHandle, session: &str, cmd: &str) -> Result<Duration, String> {
    let t = Instant::now();
    ok(h, json!({"op": "session.run", "name": session, "cmd": cmd})).await?;
    console(h, "IWNR1026I", session, "").await?;
    Ok(t.elapsed())
}

/// Runs backup command `cmd` on backup `id`; the time until its completion.
async fn backup_command(
    h: &mut CsmHandle,
    session: &str,
    cmd: &str,
    id: u64,
) -> Result<Duration, String> {
    let t = Instant::now();
    ok(
        h,
        json!({"op": "session.run", "name": session, "cmd": cmd, "backup": id}),
    )
    .await?;
    console(h, "IWNR1026I", session, "").await?;
    Ok(t.elapsed())
}

fn serve_config(dir: &std::path::Path) -> Result<ServeConfig, String> {
    let mut config = ServeConfig::default();
    config.csm.listen = "127.0.0.1:0".parse().map_err(|_| "address")?;
    config.ha.listen = "127.0.0.1:0".parse().map_err(|_| "address")?;
    config.rest.enabled = false;
    config.store.dir = dir.join("gateway");
    config.policy.storage_timeout_secs = 120;
    Ok(config)
}

async fn run(args: WholeBoxBenchArgs) -> Result<(), String> {
    let n = args.copy_sets.clamp(1, 32_640);
    let dir = match &args.dir {
        Some(d) => tempfile::tempdir_in(d),
        None => tempfile::tempdir(),
    }
    .map_err(|e| format!("temp dir: {e}"))?;
    let t = Instant::now();
    let ds8k = full_box(n).await?;
    println!(
        "simulated DS8000 with {} volumes in {:.2} s; a session of {n} copy sets",
        2 * u32::from(n),
        t.elapsed().as_secs_f64()
    );
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let (zgate_rt, _base, service) =
        start_zgate_on(serve_config(dir.path())?, PASSWORD, workers).await?;
    let ca = std::fs::read(service.ca_file.as_ref().ok_or("no CA")?).map_err(|e| e.to_string())?;
    let mut h = connect(service.addr(), &ca).await?;
    ok(
        &h,
        json!({"op": "storage.add", "serial": "75FA120", "address": ds8k.addr().to_string(),
               "user": "CSMADMIN", "password": "HMCPASS1"}),
    )
    .await?;

    ok(
        &h,
        json!({"op": "session.create", "name": "WHOLE", "type": "FC"}),
    )
    .await?;
    let imported = import(&mut h, "WHOLE", n).await?;
    println!(
        "FC  import of {n} copy sets ({} parts, one check, one read of {} volumes): {:.2} s",
        usize::from(n).div_ceil(PART),
        2 * u32::from(n),
        imported.as_secs_f64()
    );
    let flash = command(&mut h, "WHOLE", "Flash").await?;
    println!(
        "FC  Flash of the whole session to the box's answer: {:.3} s",
        flash.as_secs_f64()
    );
    ok(
        &h,
        json!({"op": "session.description", "name": "WHOLE", "description": "a small change"}),
    )
    .await?;
    // Background copy of one-cylinder volumes ends at once; then Terminate.
    console(&mut h, "IWNR2772I", "WHOLE", "").await?;
    command(&mut h, "WHOLE", "Terminate").await?;
    ok(&h, json!({"op": "session.delete", "name": "WHOLE"})).await?;

    ok(
        &h,
        json!({"op": "session.create", "name": "WHOLESGC", "type": "SGC"}),
    )
    .await?;
    let imported = import(&mut h, "WHOLESGC", n).await?;
    println!(
        "SGC import of {n} copy sets: {:.2} s",
        imported.as_secs_f64()
    );
    let backup = command(&mut h, "WHOLESGC", "Backup").await?;
    println!(
        "SGC Backup of the whole session to the box's answer: {:.3} s",
        backup.as_secs_f64()
    );
    // A second backup, so that the first can be recovered and restored (the newest
    // cannot: policy.md §3.5).
    command(&mut h, "WHOLESGC", "Backup").await?;
    let got = ok(
        &h,
        json!({"op": "session.get", "name": "WHOLESGC", "limit": 1}),
    )
    .await?;
    let first = got["result"]["backups"][0]["backupID"]
        .as_u64()
        .ok_or("the session lists no backup")?;
    let recover = backup_command(&mut h, "WHOLESGC", "Recover Backup", first).await?;
    println!(
        "SGC Recover Backup of every volume to its R1: {:.3} s",
        recover.as_secs_f64()
    );
    command(&mut h, "WHOLESGC", "TerminateH1R1").await?;
    let restore = backup_command(&mut h, "WHOLESGC", "Restore Backup to Production", first).await?;
    println!(
        "SGC Restore Backup to Production of every volume: {:.3} s",
        restore.as_secs_f64()
    );
    ok(
        &h,
        json!({"op": "session.options", "name": "WHOLESGC",
               "options": {"allow_manual_expire": true}}),
    )
    .await?;
    let expire = backup_command(&mut h, "WHOLESGC", "Expire Backup", first).await?;
    println!("SGC Expire Backup: {:.3} s", expire.as_secs_f64());
    command(&mut h, "WHOLESGC", "Terminate").await?;
    ok(&h, json!({"op": "session.delete", "name": "WHOLESGC"})).await?;

    // Every volume of the box as an H1 with no recovery volume (policy.md §5.1).
    ok(
        &h,
        json!({"op": "session.create", "name": "EVERY", "type": "SGC"}),
    )
    .await?;
    let imported = import_every_volume(&mut h, "EVERY", n).await?;
    println!(
        "SGC import of {} copy sets with no R1 (every volume of the box): {:.2} s",
        2 * u32::from(n),
        imported.as_secs_f64()
    );
    let backup = command(&mut h, "EVERY", "Backup").await?;
    println!(
        "SGC Backup of every volume of the box to the box's answer: {:.3} s",
        backup.as_secs_f64()
    );
    command(&mut h, "EVERY", "Backup").await?;
    let got = ok(
        &h,
        json!({"op": "session.get", "name": "EVERY", "limit": 1}),
    )
    .await?;
    let first = got["result"]["backups"][0]["backupID"]
        .as_u64()
        .ok_or("the session lists no backup")?;
    let restore = backup_command(&mut h, "EVERY", "Restore Backup to Production", first).await?;
    println!(
        "SGC Restore Backup to Production of every volume of the box: {:.3} s",
        restore.as_secs_f64()
    );
    ok(
        &h,
        json!({"op": "session.description", "name": "EVERY", "description": "a small change"}),
    )
    .await?;
    drop(h);
    zgate_rt.run(service.shutdown()).await?;
    drop(zgate_rt);

    let store_path = dir.path().join("gateway").join("zgate.redb");
    let size = std::fs::metadata(&store_path).map_or(0, |m| m.len());
    let (change, records) = small_change_bytes(&store_path)?;
    println!(
        "bytes written by the small change (description) on the {}-copy-set session: {change} ({records} records); store file {:.1} MB",
        2 * u32::from(n),
        size as f64 / 1e6
    );

    let t = Instant::now();
    let (zgate_rt, _base, service) =
        start_zgate_on(serve_config(dir.path())?, PASSWORD, workers).await?;
    let restarted = t.elapsed();
    let ca = std::fs::read(service.ca_file.as_ref().ok_or("no CA")?).map_err(|e| e.to_string())?;
    let h = connect(service.addr(), &ca).await?;
    let got = ok(
        &h,
        json!({"op": "session.get", "name": "EVERY", "limit": 1}),
    )
    .await?;
    println!(
        "restart with that state (store opened, state rebuilt, listening): {:.3} s; the session has {} copy sets",
        restarted.as_secs_f64(),
        got["result"]["numcopysets"]
    );
    drop(h);
    zgate_rt.run(service.shutdown()).await?;
    drop(ds8k);
    Ok(())
}

/// The journal bytes of the last description change (on the whole-box session): its
/// `SessionChanged` record and the audit entry after it.
fn small_change_bytes(path: &std::path::Path) -> Result<(usize, usize), String> {
    let store = zgate::store::Store::open(path).map_err(|e| e.to_string())?;
    let records = store.load().map_err(|e| e.to_string())?;
    let at = records
        .iter()
        .rposition(|r| {
            matches!(r, Record::SessionChanged { changes, .. }
                if changes.iter().any(|c| matches!(c,
                    zgate::policy::engine::delta::SessionChange::Description(d) if d == "a small change")))
        })
        .ok_or("the change's record is not in the journal")?;
    let mut bytes = 0;
    let mut count = 0;
    for r in &records[at..] {
        bytes += serde_json::to_vec(r).map_err(|e| e.to_string())?.len();
        count += 1;
        if matches!(r, Record::Audit(_)) {
            break;
        }
    }
    Ok((bytes, count))
}
