//! `zgate csm …`: the operator's client of the CSM protocol (protocol-specs/csm.md).
//! CSM-like tables for people, `--json` for scripts; the server's message id and
//! text in every error; exit status 1 on a refusal. Passwords come from an
//! environment variable or a prompt, never from the command line.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::{Value, json};
use zeroize::Zeroizing;
use zgate::client::csm::{self, Authentication, ConnectorEvent, CsmConnectorConfig, CsmHandle};
use zgate::clock::Clock;
use zgate::proto::ReturnCode;
use zgate::proto::csm::CsmBody;
use zgate::proto::logon::Credential;
use zgate::tls::ClientTls;

use super::exit;

#[derive(Debug, Args)]
pub struct CsmArgs {
    /// The gateway's CSM protocol address.
    #[arg(long, default_value = "127.0.0.1:9560", global = true)]
    addr: std::net::SocketAddr,
    /// User to log on as (at most 8 characters).
    #[arg(long, env = "ZGATE_CSM_USER", default_value = "admin", global = true)]
    user: String,
    /// CA certificate (PEM) the gateway's certificate must chain to.
    #[arg(long, default_value = "zgate-data/csm-ca.pem", global = true)]
    ca: std::path::PathBuf,
    /// Name the gateway's certificate must carry.
    #[arg(long, default_value = "localhost", global = true)]
    server_name: String,
    /// Print the server's JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: CsmCommand,
}

#[derive(Debug, Subcommand)]
enum CsmCommand {
    /// Server status: version, dual-control mode, counts.
    Status,
    /// List the sessions.
    Sessions,
    /// One session: copy sets, options, backups, available commands.
    Session { name: String },
    /// Create a session.
    Create {
        name: String,
        /// FC, SGC, MM (Metro Mirror Failover/Failback) or HS (Basic HyperSwap).
        #[arg(long = "type")]
        kind: String,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Remove a session (it must be Defined).
    Delete { name: String },
    /// Add copy sets, each H1,PARTNER in CSM's volume form, or every copy set of a
    /// CSV file (`--file`, CSM's export shape), sent in parts and added as one.
    Copysets {
        name: String,
        sets: Vec<String>,
        /// A copy-set CSV file (policy.md §5.7).
        #[arg(long, conflicts_with = "sets")]
        file: Option<std::path::PathBuf>,
        /// Copy sets per part of a file (at most 800, which keeps a part inside the
        /// CSM protocol's 64 KiB frame).
        #[arg(long, default_value_t = IMPORT_PART, value_parser = clap::value_parser!(u16).range(1..=800))]
        part_size: u16,
    },
    /// Set a session's options: key=value … (csm.md §3.3).
    Options { name: String, settings: Vec<String> },
    /// Run a command (`Flash`, `Backup`, `Expire Backup` --backup ID, `Start H1->H2`,
    /// `HyperSwap`, …).
    Run {
        name: String,
        cmd: String,
        #[arg(long)]
        backup: Option<u64>,
        /// Follow background copy with a progress bar until IWNR2772I.
        #[arg(long)]
        wait: bool,
    },
    /// Pending dual-control requests.
    Requests,
    /// Approve a request.
    Approve { id: u64 },
    /// Reject a request with a comment.
    Reject { id: u64, comment: String },
    /// Cancel one's own request.
    Cancel { id: u64 },
    /// Ask for a dual-control mode: off, full, sgc.
    Mode { mode: String },
    /// List the users.
    Users,
    /// Create a user; its password from ZGATE_NEW_PASSWORD or a prompt.
    UserAdd {
        name: String,
        #[arg(long)]
        role: String,
        /// An Operator's sessions, comma-separated (absent: all).
        #[arg(long, value_delimiter = ',')]
        sessions: Option<Vec<String>>,
        /// An Operator's actions, comma-separated (absent: every action).
        #[arg(long, value_delimiter = ',')]
        actions: Option<Vec<String>>,
    },
    /// List the storage systems.
    Storage,
    /// Add a DS8000; the HMC password from ZGATE_HMC_PASSWORD or a prompt.
    StorageAdd {
        serial: String,
        address: String,
        #[arg(long)]
        hmc_user: String,
    },
    /// List the host connections.
    Hosts,
    /// List the scheduled tasks.
    Tasks,
    /// Show console messages as they come (until Ctrl-C with --follow).
    Console {
        #[arg(long)]
        follow: bool,
    },
    /// Send one operation as JSON (every operation of csm.md §3.1).
    Raw { json: String },
    /// Set a server property (policy.md §10), e.g. zgate.copy.poll.secs 5.
    Property { name: String, value: String },
    /// Active/standby: status, pairing, takeover (ha.md §4).
    Ha {
        #[command(subcommand)]
        action: HaAction,
    },
}

#[derive(Debug, Subcommand)]
enum HaAction {
    /// This server's role, its partner, the link, the epoch and the lag.
    Status,
    /// On the active: make SERVER its standby (its data is replaced); the password of
    /// an Administrator of SERVER from ZGATE_HA_PASSWORD or a prompt.
    SetStandby {
        server: String,
        #[arg(long)]
        user: String,
        #[arg(long)]
        port: Option<u16>,
    },
    /// On this server: become the standby of ACTIVE (needs the pair's certificates).
    SetAsStandby {
        active: String,
        #[arg(long)]
        port: Option<u16>,
    },
    /// On the standby: become the active.
    Takeover,
    /// Restore the link now.
    Reconnect,
    /// Leave the relationship with SERVER.
    Remove { server: String },
}

fn secret(var: &str, prompt: &str) -> Result<Zeroizing<String>, String> {
    if let Ok(v) = std::env::var(var) {
        return Ok(Zeroizing::new(v));
    }
    rpassword::prompt_password(prompt)
        .map(Zeroizing::new)
        .map_err(|e| format!("no {var} and no terminal to ask: {e}"))
}

fn request(cmd: &CsmCommand) -> Result<Option<Value>, String> {
    use CsmCommand as C;
    Ok(Some(match cmd {
        C::Status => json!({"op": "server.status"}),
        C::Sessions => json!({"op": "session.list"}),
        C::Session { name } => json!({"op": "session.get", "name": name}),
        C::Create {
            name,
            kind,
            description,
        } => {
            json!({"op": "session.create", "name": name, "type": kind, "description": description})
        }
        C::Delete { name } => json!({"op": "session.delete", "name": name}),
        C::Copysets {
            name,
            sets,
            file: None,
            ..
        } => {
            let sets: Vec<Vec<&str>> = sets.iter().map(|s| s.split(',').collect()).collect();
            json!({"op": "session.copysets.add", "name": name, "copysets": sets})
        }
        // Sent in parts by `session` (csm.md §3.6).
        C::Copysets { file: Some(_), .. } => {
            return Err("a copy-set file is sent in parts".into());
        }
        C::Options { name, settings } => {
            let mut options = serde_json::Map::new();
            for kv in settings {
                let (k, v) = kv
                    .split_once('=')
                    .ok_or_else(|| format!("{kv}: key=value"))?;
                let value = serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.to_owned()));
                options.insert(k.to_owned(), value);
            }
            json!({"op": "session.options", "name": name, "options": options})
        }
        C::Run {
            name, cmd, backup, ..
        } => {
            json!({"op": "session.run", "name": name, "cmd": cmd, "backup": backup})
        }
        C::Requests => json!({"op": "dualcontrol.requests"}),
        C::Approve { id } => json!({"op": "dualcontrol.approve", "id": id}),
        C::Reject { id, comment } => {
            json!({"op": "dualcontrol.reject", "id": id, "comment": comment})
        }
        C::Cancel { id } => json!({"op": "dualcontrol.cancel", "id": id}),
        C::Mode { mode } => json!({"op": "dualcontrol.set", "mode": mode}),
        C::Users => json!({"op": "user.list"}),
        C::UserAdd {
            name,
            role,
            sessions,
            actions,
        } => {
            let password = secret("ZGATE_NEW_PASSWORD", &format!("password for {name}: "))?;
            json!({"op": "user.create", "name": name, "role": role, "password": *password,
                   "sessions": sessions, "actions": actions})
        }
        C::Storage => json!({"op": "storage.list"}),
        C::StorageAdd {
            serial,
            address,
            hmc_user,
        } => {
            let password = secret(
                "ZGATE_HMC_PASSWORD",
                &format!("HMC password of {hmc_user}: "),
            )?;
            json!({"op": "storage.add", "serial": serial, "address": address, "user": hmc_user,
                   "password": *password})
        }
        C::Hosts => json!({"op": "host.list"}),
        C::Tasks => json!({"op": "task.list"}),
        C::Console { .. } => return Ok(None),
        C::Raw { json } => serde_json::from_str(json).map_err(|e| format!("not JSON: {e}"))?,
        C::Property { name, value } => {
            json!({"op": "server.property", "name": name, "value": value})
        }
        C::Ha { action } => match action {
            HaAction::Status => json!({"op": "ha.status"}),
            HaAction::SetStandby { server, user, port } => {
                let password = secret(
                    "ZGATE_HA_PASSWORD",
                    &format!("password of {user} on {server}: "),
                )?;
                json!({"op": "ha.set_standby", "server": server, "user": user,
                       "password": *password, "port": port})
            }
            HaAction::SetAsStandby { active, port } => {
                json!({"op": "ha.set_as_standby", "active": active, "port": port})
            }
            HaAction::Takeover => json!({"op": "ha.takeover"}),
            HaAction::Reconnect => json!({"op": "ha.reconnect"}),
            HaAction::Remove { server } => json!({"op": "ha.remove", "server": server}),
        },
    }))
}

/// Copy sets per part of an import: about 50 KB of JSON, inside the 64 KiB frame.
const IMPORT_PART: u16 = 800;

/// A copy-set file as `session.copysets.import` parts (csm.md §3.6).
fn import_parts(
    session: &str,
    path: &std::path::Path,
    part_size: usize,
) -> Result<Vec<Value>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let sets = zgate::policy::copy_set_file::read(&text, zgate::policy::engine::MAX_COPY_SETS)
        .map_err(|e| format!("{}, {e}", path.display()))?;
    let chunks: Vec<_> = sets.chunks(part_size.max(1)).collect();
    // Named by its content: the same file sent again (after a lost reply, say)
    // continues the same import instead of opening another.
    let import = {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (session, &text).hash(&mut h);
        format!("file-{:016x}", h.finish())
    };
    Ok(chunks
        .iter()
        .enumerate()
        .map(|(i, chunk)| {
            let lists: Vec<Vec<String>> = chunk
                .iter()
                .map(|c| {
                    std::iter::once(&c.h1)
                        .chain(&c.partner)
                        .map(ToString::to_string)
                        .collect()
                })
                .collect();
            json!({"op": "session.copysets.import", "name": session, "import": import,
                   "part": i + 1, "parts": chunks.len(), "copysets": lists})
        })
        .collect())
}

/// Columns shown for each list, CSM's names first.
fn columns(cmd: &CsmCommand) -> &'static [&'static str] {
    match cmd {
        CsmCommand::Sessions => &[
            "name",
            "type",
            "state",
            "status",
            "numcopysets",
            "copying",
            "recoverable",
            "haserror",
            "productionhost",
            "hyperswapstatus",
        ],
        CsmCommand::Requests => &["requestid", "requester", "change", "expires"],
        CsmCommand::Users => &["name", "role", "grant"],
        CsmCommand::Storage => &["name", "address", "user"],
        CsmCommand::Hosts => &["system", "kind", "address", "port", "user", "credential"],
        CsmCommand::Tasks => &[
            "id",
            "name",
            "session",
            "command",
            "enabled",
            "nextRun",
            "lastmessage",
        ],
        _ => &[],
    }
}

fn cell(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        // A grant: "sessions all, actions default" (no JSON punctuation in a cell).
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| format!("{k} {}", list_cell(v)))
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    }
}

fn list_cell(v: &Value) -> String {
    match v {
        Value::Array(items) => items.iter().map(cell).collect::<Vec<_>>().join(" "),
        other => cell(other),
    }
}

/// A table with `;` between columns, as CSM's CLI prints with `-l`.
fn table(rows: &[Value], cols: &[&str]) {
    println!("{}", cols.join(";"));
    for r in rows {
        let line: Vec<String> = cols.iter().map(|c| cell(&r[*c])).collect();
        println!("{}", line.join(";"));
    }
}

async fn connect(args: &CsmArgs) -> Result<CsmHandle, String> {
    let password = secret(
        "ZGATE_CSM_PASSWORD",
        &format!("password for {}: ", args.user),
    )?;
    let ca = std::fs::read(&args.ca).map_err(|e| format!("{}: {e}", args.ca.display()))?;
    let mut c = CsmConnectorConfig::new(args.addr);
    c.user = args.user.clone();
    c.appl = "CSM".into();
    c.clock = Clock::system();
    c.max_logon_refusals = 1;
    c.request_timeout = Duration::from_secs(60);
    c.tls = Some(ClientTls::from_pem(&ca, &args.server_name, None).map_err(|e| e.to_string())?);
    let credential = Credential::new(&password).ok_or("the password is 1 to 100 characters")?;
    let auth = if password.chars().count() > 8 {
        Authentication::Passphrase(credential)
    } else {
        Authentication::Password(credential)
    };
    let mut h = csm::spawn(c, auth).map_err(|e| e.to_string())?;
    loop {
        match tokio::time::timeout(Duration::from_secs(15), h.next_event()).await {
            Ok(Some(ConnectorEvent::Connected { .. })) => return Ok(h),
            Ok(Some(ConnectorEvent::GaveUp { status, .. })) => {
                return Err(format!("logon refused (reason {:#06x})", status.reason));
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => return Err(format!("no logon to {} in time", args.addr)),
        }
    }
}

pub fn run(args: CsmArgs) -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("zgate: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        match session(&args).await {
            Ok(code) => code,
            Err(e) => {
                eprintln!("zgate csm: {e}");
                ExitCode::from(exit::BAD_INPUT)
            }
        }
    })
}

async fn session(args: &CsmArgs) -> Result<ExitCode, String> {
    // A copy-set file: every part but the last is staged first; the last one's
    // reply is the command's (csm.md §3.6).
    let (staged, body) = match &args.command {
        CsmCommand::Copysets {
            name,
            file: Some(path),
            part_size,
            ..
        } => {
            let mut parts = import_parts(name, path, usize::from(*part_size))?;
            let last = parts.pop();
            (parts, last)
        }
        cmd => (Vec::new(), request(cmd)?),
    };
    let mut h = match connect(args).await {
        Ok(h) => h,
        Err(e) if e.starts_with("logon refused") => {
            eprintln!("zgate csm: {e}");
            return Ok(ExitCode::from(exit::REFUSED));
        }
        Err(e) => return Err(e),
    };
    let Some(body) = body else {
        // console
        let follow = matches!(args.command, CsmCommand::Console { follow: true });
        csm::subscribe(&h, true).await.map_err(|e| e.to_string())?;
        follow_console(&mut h, args.json, follow, None).await;
        return Ok(ExitCode::SUCCESS);
    };
    if matches!(args.command, CsmCommand::Run { wait: true, .. }) {
        // Before the command, so that its IWNR2772I cannot be missed.
        csm::subscribe(&h, true).await.map_err(|e| e.to_string())?;
    }
    for part in &staged {
        let (status, reply) = csm::call(&h, part).await.map_err(|e| e.to_string())?;
        if status.rc.0 >= ReturnCode::REFUSED.0 {
            eprintln!("zgate csm: refused: {}", cell(&reply["msgTranslated"]));
            return Ok(ExitCode::from(exit::REFUSED));
        }
    }
    let (status, reply) = csm::call(&h, &body).await.map_err(|e| e.to_string())?;
    if args.json {
        println!("{reply}");
    } else if let Some(result) = reply.get("result") {
        match result {
            // ha.md §9: the status as a person reads it.
            Value::Object(o)
                if o.contains_key("ha")
                    && matches!(
                        args.command,
                        CsmCommand::Ha {
                            action: HaAction::Status
                        }
                    ) =>
            {
                print_ha(&o["ha"]);
            }
            Value::Object(o)
                if o.contains_key("msgTranslated")
                    && matches!(args.command, CsmCommand::Ha { .. }) =>
            {
                println!("{}", cell(&o["msgTranslated"]));
            }
            Value::Array(rows) if !columns(&args.command).is_empty() => {
                table(rows, columns(&args.command))
            }
            other => println!(
                "{}",
                serde_json::to_string_pretty(other).unwrap_or_default()
            ),
        }
    } else {
        println!("{}", cell(&reply["msgTranslated"]));
    }
    if status.rc.0 >= ReturnCode::REFUSED.0 {
        if !args.json {
            eprintln!(
                "zgate csm: refused ({}: reason {:#06x})",
                cell(&reply["msg"]),
                status.reason
            );
        }
        return Ok(ExitCode::from(exit::REFUSED));
    }
    if let CsmCommand::Run {
        name, wait: true, ..
    } = &args.command
    {
        follow_copy(&mut h, name).await;
    }
    Ok(ExitCode::SUCCESS)
}

fn print_ha(ha: &Value) {
    println!("role:       {}", cell(&ha["role"]));
    println!("this:       {}", cell(&ha["local"]));
    println!("partner:    {}", cell(&ha["partner"]));
    println!("link:       {}", cell(&ha["link"]));
    if !ha["last_error"].is_null() {
        println!("last error: {}", cell(&ha["last_error"]));
    }
    println!("ack:        {}", cell(&ha["ack"]));
    println!("epoch:      {}", cell(&ha["epoch"]));
    println!("last seq:   {}", cell(&ha["last_seq"]));
    if ha["role"] == "ACTIVE" && !ha["partner"].is_null() {
        println!(
            "lag:        {} records, {} ms",
            cell(&ha["lag_records"]),
            cell(&ha["lag_ms"])
        );
    }
}

/// Prints console events; with `until`, stops at the first message with that id
/// about that session.
async fn follow_console(
    h: &mut CsmHandle,
    as_json: bool,
    forever: bool,
    until: Option<(&str, &str)>,
) {
    let wait = if forever {
        Duration::MAX
    } else {
        Duration::from_secs(2)
    };
    while let Ok(Some(event)) = tokio::time::timeout(wait, h.next_event()).await {
        if let ConnectorEvent::Event(CsmBody::Console { json }) = event {
            let Ok(v) = serde_json::from_str::<Value>(&json) else {
                continue;
            };
            if as_json {
                println!("{v}");
            } else {
                println!("{}", cell(&v["msgTranslated"]));
            }
            if let Some((id, session)) = until
                && v["msg"] == id
                && v["session"] == session
            {
                return;
            }
        }
    }
}

/// A progress bar over the session's out-of-sync tracks until IWNR2772I.
async fn follow_copy(h: &mut CsmHandle, session: &str) {
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "background copy {bar:40} {pos}/{len} tracks {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut total = 0u64;
    loop {
        tokio::select! {
            event = h.next_event() => match event {
                Some(ConnectorEvent::Event(CsmBody::Console { json })) => {
                    let Ok(v) = serde_json::from_str::<Value>(&json) else { continue };
                    if v["msg"] == "IWNR2772I" && v["session"] == session {
                        bar.set_position(total);
                        bar.finish_with_message("complete");
                        println!("{}", cell(&v["msgTranslated"]));
                        return;
                    }
                }
                None => return,
                _ => {}
            },
            () = tokio::time::sleep(Duration::from_millis(500)) => {
                if let Ok((_, v)) = csm::call(h, &json!({"op": "session.get", "name": session})).await
                    && let Some(oos) = v["result"]["progress_out_of_sync_tracks"].as_u64()
                {
                    total = total.max(oos);
                    bar.set_length(total);
                    bar.set_position(total - oos);
                }
            }
        }
    }
}
