//! The console's pages (console.md §3), as maud templates compiled into the
//! binary: every value is escaped by the template; nothing is rendered raw but the
//! templates' own markup. Each page is one frame (the user, the dual-control mode
//! on top with its icon, the navigation) around its panel.

use axum::response::Html;
use maud::{DOCTYPE, Markup, html};
use serde_json::Value;

use super::{Outcome, ROOT};
use crate::policy::dual_control::DualControlMode;

/// What every page shows around its panel.
pub(super) struct Frame {
    /// The signed-in user.
    pub(super) user: String,
    /// Their role's name.
    pub(super) role: String,
    /// The dual-control mode.
    pub(super) mode: DualControlMode,
    /// The session's CSRF token, in every form.
    pub(super) csrf: String,
}

/// What the signed-in user may do on a session (what is not allowed is not
/// offered; the engine refuses it anyway).
#[derive(Debug, Default)]
pub(super) struct Allowed {
    /// Commands valid now that the user may run.
    pub(super) commands: Vec<String>,
    /// Modify Session Properties.
    pub(super) modify: bool,
    /// Add Copy Sets.
    pub(super) add_copy_sets: bool,
    /// Tracks of the session's H1 volumes (the background copy's whole).
    pub(super) total_tracks: u64,
}

/// Volumes listed per storage system (a full box has 65,280).
pub(super) const VOLUMES_LISTED: usize = 1_000;

/// A volume zgate knows, as the forms list it.
pub(super) struct KnownVolume {
    /// CSM's id (`DS8000:2107.75FA120:VOL:3000`).
    pub(super) id: String,
    /// Type and size.
    pub(super) kind: String,
    /// It has Safeguarded Copy capacity.
    pub(super) safeguarded: bool,
    /// The session whose copy set holds it.
    pub(super) used_by: Option<String>,
}

/// The volumes zgate knows on one storage system.
pub(super) struct BoxVolumes {
    /// The serial.
    pub(super) serial: String,
    /// How many it knows (more than listed on a big box).
    pub(super) total: usize,
    /// The first [`VOLUMES_LISTED`].
    pub(super) volumes: Vec<KnownVolume>,
}

/// The storage systems' volumes, for choosing copy sets.
fn volume_list(boxes: &[BoxVolumes]) -> Markup {
    html! {
        section aria-labelledby="volumes-h" {
            h2 id="volumes-h" { "Volumes of the storage systems" }
            @for b in boxes {
                details {
                    summary { "DS8000:BOX:2107." (b.serial) ": " (b.total) " volumes known" }
                    @if b.volumes.is_empty() {
                        p { "None read yet: " a href={ (ROOT) "/hardware" } { "read its volumes" } "." }
                    } @else {
                        table class="volumes" {
                            thead { tr { th { "Volume" } th { "Type and size" } th { "Safeguarded capacity" } th { "In session" } } }
                            tbody {
                                @for v in &b.volumes {
                                    tr { td { (v.id) } td { (v.kind) } td { (if v.safeguarded { "Yes" } else { "No" }) } td { (v.used_by.clone().unwrap_or_default()) } }
                                }
                            }
                        }
                        @if b.total > b.volumes.len() { p { "The first " (b.volumes.len()) " are listed." } }
                    }
                }
            }
        }
    }
}

/// The options a session form may carry (csm.md §3.3) and their kinds.
pub(super) const OPTION_FIELDS: &[(&str, &str)] = &[
    ("incremental", "boolean"),
    ("nocopy", "boolean"),
    ("persistent", "boolean"),
    ("inhibit_target_writes", "boolean"),
    ("min_flash_interval_mins", "integer"),
    ("retention_mins", "integer"),
    ("min_backup_interval_mins", "integer"),
    ("allow_manual_expire", "boolean"),
    ("min_backups", "integer"),
    ("hyperswap", "boolean"),
    ("hardened_freeze", "boolean"),
    ("hold_io_after_suspend", "boolean"),
    ("system", "string"),
    ("members", "list"),
];

/// CSM's label of an option.
fn option_label(field: &str) -> &str {
    match field {
        "incremental" => "Incremental",
        "nocopy" => "No Copy",
        "persistent" => "Persistent",
        "inhibit_target_writes" => "Inhibit Target Writes",
        "min_flash_interval_mins" => "Minimum Time Frame per Flash (minutes)",
        "retention_mins" => "Recovery backup retention (minutes; 0: keep)",
        "min_backup_interval_mins" => "Minimum time between backups (minutes)",
        "allow_manual_expire" => "Allow Backups to be Manually Expired",
        "min_backups" => "Minimum number of backups retention should always maintain",
        "hyperswap" => "Manage H1-H2 with HyperSwap",
        "hardened_freeze" => "Manage H1-H2 with Hardened Freeze",
        "hold_io_after_suspend" => "Hold I/O after Suspend",
        "system" => "Host system (z/OS or z/TPF; empty: the HMC)",
        "members" => "Other sysplex members (z/OS systems, comma-separated)",
        other => other,
    }
}

/// Commands that change or end what the storage holds ask first.
fn confirmation(command: &str) -> Option<String> {
    (command != "Refresh States").then(|| {
        format!("Run {command}? It acts on the storage system and cannot be undone from here.")
    })
}

/// A session name as one path segment.
pub(super) fn path_segment(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Array(items) => items.iter().map(text).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

fn mode_class(mode: DualControlMode) -> &'static str {
    match mode {
        DualControlMode::Off => "mode mode-off",
        DualControlMode::FullProtection => "mode mode-full",
        DualControlMode::SafeguardedCopy => "mode mode-sgc",
    }
}

/// The mode's icon: open for off, one lock for Safeguarded Copy, two for Full
/// Protection (CSM shows the mode "differently depending on the mode").
fn mode_icon(mode: DualControlMode) -> &'static str {
    match mode {
        DualControlMode::Off => "\u{25CB}",
        DualControlMode::FullProtection => "\u{25CF}\u{25CF}",
        DualControlMode::SafeguardedCopy => "\u{25CF}",
    }
}

fn csrf(frame: &Frame) -> Markup {
    html! { input type="hidden" name="csrf" value=(frame.csrf); }
}

fn result(outcome: Option<&Outcome>) -> Markup {
    html! {
        @if let Some(o) = outcome {
            @let class = if o.id.ends_with('E') { "result error" } else if o.id == "IWNR8003W" { "result held" } else { "result" };
            p class=(class) role="status" id="result" { (o.text) }
        }
    }
}

/// The whole page: head, frame, panel.
fn page(frame: Option<&Frame>, title: &str, panel: Markup) -> Html<String> {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " — zgate" }
                link rel="stylesheet" href={ (ROOT) "/static/console.css" };
                script src={ (ROOT) "/static/console.js" } defer {}
            }
            body {
                header {
                    strong { "zgate" }
                    @if let Some(f) = frame {
                        nav aria-label="Panels" {
                            a href={ (ROOT) "/" } { "Sessions" }
                            a href={ (ROOT) "/requests" } { "Dual Control Requests" }
                            a href={ (ROOT) "/hardware" } { "Storage Systems and Hosts" }
                            a href={ (ROOT) "/tasks" } { "Scheduled Tasks" }
                            a href={ (ROOT) "/admin" } { "Administration" }
                            a href={ (ROOT) "/messages" } { "Console" }
                        }
                        span class=(mode_class(f.mode)) id="mode" title="Dual Control mode" {
                            (mode_icon(f.mode)) " " (f.mode.name())
                        }
                        span { (f.user) " (" (f.role) ")" }
                        form method="post" action={ (ROOT) "/logout" } {
                            (csrf(f))
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main { h1 { (title) } (panel) }
            }
        }
    };
    Html(markup.into_string())
}

/// The sign-in page.
pub(super) fn login(token: &str, error: Option<&str>) -> Html<String> {
    page(
        None,
        "Sign in",
        html! {
            @if let Some(e) = error { p class="result error" role="alert" { (e) } }
            form method="post" action={ (ROOT) "/login" } {
                input type="hidden" name="login" value=(token);
                label { "User name " input type="text" name="user" id="user" autocomplete="username" required; }
                label { "Password " input type="password" name="password" id="password" autocomplete="current-password" required; }
                button type="submit" id="signin" { "Sign in" }
            }
        },
    )
}

/// The sessions panel.
pub(super) fn sessions(frame: &Frame, rows: Result<Value, Outcome>) -> Html<String> {
    let panel = html! {
        p { a href={ (ROOT) "/new" } id="create" { "Create Session" } }
        @match rows {
            Err(e) => { (result(Some(&e))) }
            Ok(rows) => {
                table {
                    thead { tr { th { "Name" } th { "Type" } th { "State" } th { "Status" } th { "Copy sets" } th { "Recoverable" } th { "Copying" } th { "Production" } } }
                    tbody {
                        @for s in rows.as_array().into_iter().flatten() {
                            @let name = text(&s["name"]);
                            @let status = text(&s["status"]);
                            tr {
                                td { a href={ (ROOT) "/sessions/" (path_segment(&name)) } { (name) } }
                                td { (text(&s["type"])) }
                                td { (text(&s["state"])) }
                                td { span class={ "status status-" (status) } { (status) } }
                                td { (text(&s["numcopysets"])) }
                                td { (if s["recoverable"] == true { "Yes" } else { "No" }) }
                                td { (if s["copying"] == true { "Yes" } else { "No" }) }
                                td { (text(&s["productionhost"])) }
                            }
                        }
                    }
                }
            }
        }
    };
    page(Some(frame), "Sessions", panel)
}

/// The create-session form.
pub(super) fn new_session(
    frame: &Frame,
    refused: Option<&Outcome>,
    volumes: &[BoxVolumes],
) -> Html<String> {
    let panel = html! {
        (result(refused))
        form method="post" action={ (ROOT) "/new" } {
            (csrf(frame))
            label { "Name " input type="text" name="name" id="name" required maxlength="250"; }
            label { "Type "
                select name="type" id="type" {
                    option value="FC" { "FlashCopy" }
                    option value="SGC" { "Safeguarded Copy" }
                    option value="MM" { "Metro Mirror Failover/Failback" }
                    option value="HS" { "Basic HyperSwap" }
                }
            }
            label { "Description " input type="text" name="description" id="description" maxlength="1024"; }
            button type="submit" id="create-session" { "Create" }
        }
        (volume_list(volumes))
    };
    page(Some(frame), "Create Session", panel)
}

/// A session's page: state, progress, commands, properties, copy sets, backups.
pub(super) fn session(
    frame: &Frame,
    name: &str,
    view: Result<Value, Outcome>,
    allowed: &Allowed,
    outcome: Option<&Outcome>,
    volumes: &[BoxVolumes],
) -> Html<String> {
    let s = match view {
        Ok(s) => s,
        Err(e) => return page(Some(frame), name, result(Some(&e))),
    };
    let action = |what: &str| format!("{ROOT}/sessions/{}/{what}", path_segment(name));
    let status = text(&s["status"]);
    let left = s["progress_out_of_sync_tracks"].as_u64().unwrap_or(0);
    let copying = s["copying"] == true;
    let done = allowed.total_tracks.saturating_sub(left);
    let options = s["options"].as_object().cloned().unwrap_or_default();
    let backup_commands: Vec<&String> = allowed
        .commands
        .iter()
        .filter(|c| {
            matches!(
                c.as_str(),
                "Recover Backup" | "Expire Backup" | "Restore Backup to Production"
            )
        })
        .collect();
    let booleans: Vec<&str> = OPTION_FIELDS
        .iter()
        .filter(|(f, k)| *k == "boolean" && options.contains_key(*f))
        .map(|(f, _)| *f)
        .collect();
    let panel = html! {
        (result(outcome))
        p { (text(&s["description"])) }
        dl {
            dt { "Type" } dd { (text(&s["type"])) }
            dt { "State" } dd id="state" { (text(&s["state"])) }
            dt { "Status" } dd { span class={ "status status-" (status) } id="status" { (status) } }
            dt { "Recoverable" } dd { (if s["recoverable"] == true { "Yes" } else { "No" }) }
            @if s["productionhost"].is_string() && text(&s["type"]).starts_with(['M', 'H']) {
                dt { "Production" } dd { (text(&s["productionhost"])) }
                dt { "HyperSwap" } dd { (text(&s["hyperswapstatus"])) }
            }
        }
        section aria-labelledby="progress-h" {
            h2 id="progress-h" { "Background copy" }
            @if copying {
                progress id="progress" max=(allowed.total_tracks.max(1)) value=(done) { (done) " of " (allowed.total_tracks) " tracks" }
                p { (left) " tracks to copy" }
            } @else {
                progress id="progress" max="1" value="1" { "complete" }
                p { "Not copying" }
            }
        }
        section aria-labelledby="commands-h" {
            h2 id="commands-h" { "Commands" }
            div class="commands" {
                @for c in allowed.commands.iter().filter(|c| !backup_commands.contains(c)) {
                    form method="post" action=(action("run")) data-confirm=[confirmation(c)] {
                        (csrf(frame))
                        input type="hidden" name="cmd" value=(c);
                        button type="submit" data-command=(c) { (c) }
                    }
                }
                @if allowed.commands.is_empty() { p { "No command is available to you now." } }
            }
        }
        @if !s["backups"].as_array().is_none_or(Vec::is_empty) {
            section aria-labelledby="backups-h" {
                h2 id="backups-h" { "Backups" }
                table {
                    thead { tr { th { "Backup" } th { "Time (UTC)" } th { "Recoverable" } th { "Actions" } } }
                    tbody {
                        @for b in s["backups"].as_array().into_iter().flatten() {
                            tr {
                                td { (text(&b["backupID"])) }
                                td { (b["backupTime"].as_u64().map(crate::gateway::csm::java_medium).unwrap_or_default()) }
                                td { (if b["recoverable"] == true { "Yes" } else { "No" }) }
                                td class="commands" {
                                    @for c in &backup_commands {
                                        form method="post" action=(action("run")) data-confirm=[confirmation(c)] {
                                            (csrf(frame))
                                            input type="hidden" name="cmd" value=(c);
                                            input type="hidden" name="backup" value=(text(&b["backupID"]));
                                            button type="submit" { (c) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        section aria-labelledby="options-h" {
            h2 id="options-h" { "Properties" }
            form method="post" action=(action("options")) {
                (csrf(frame))
                input type="hidden" name="booleans" value=(booleans.join(","));
                @for (field, kind) in OPTION_FIELDS {
                    @if let Some(value) = options.get(*field) {
                        label {
                            @if *kind == "boolean" {
                                input type="checkbox" name=(field) id=(field) checked[value == &Value::Bool(true)] disabled[!allowed.modify];
                                " " (option_label(field))
                            } @else if *kind == "integer" {
                                (option_label(field)) " "
                                input type="number" min="0" name=(field) id=(field) value=(text(value)) disabled[!allowed.modify];
                            } @else {
                                (option_label(field)) " "
                                input type="text" name=(field) id=(field) value=(text(value)) disabled[!allowed.modify];
                            }
                        }
                    }
                }
                @if allowed.modify { button type="submit" id="save-options" { "Save Properties" } }
            }
        }
        section aria-labelledby="copysets-h" {
            h2 id="copysets-h" { "Copy sets" }
            table {
                thead { tr { th { "H1" } th { "Partner" } } }
                tbody {
                    @for c in s["copysets"].as_array().into_iter().flatten() {
                        tr { td { (text(&c[0])) } td { (text(&c[1])) } }
                    }
                }
            }
            @if allowed.add_copy_sets {
                form method="post" action=(action("copysets")) {
                    (csrf(frame))
                    label { "Add copy sets, one per line: H1,partner "
                        textarea name="copysets" id="copysets" placeholder="DS8000:2107.75FA120:VOL:3000,DS8000:2107.75FA120:VOL:3100" {}
                    }
                    button type="submit" id="add-copysets" { "Add Copy Sets" }
                }
                (volume_list(volumes))
            }
        }
        section aria-labelledby="live-h" {
            h2 id="live-h" { "Console for this session" }
            ul id="live" data-source={ (ROOT) "/events?session=" (path_segment(name)) } {}
        }
    };
    page(Some(frame), name, panel)
}

/// The Dual Control Requests panel (the mode on top, in the frame and here).
pub(super) fn requests(
    frame: &Frame,
    rows: Result<Value, Outcome>,
    outcome: Option<&Outcome>,
) -> Html<String> {
    let panel = html! {
        (result(outcome))
        p { "Dual Control mode: " span class=(mode_class(frame.mode)) { (mode_icon(frame.mode)) " " (frame.mode.name()) } }
        form method="post" action={ (ROOT) "/mode" } {
            (csrf(frame))
            label { "Request a change of mode "
                select name="mode" id="mode-choice" {
                    option value="off" { "Off" }
                    option value="full" { "Full Protection" }
                    option value="sgc" { "Safeguarded Copy" }
                }
            }
            button type="submit" id="request-mode" { "Request" }
        }
        @match rows {
            Err(e) => { (result(Some(&e))) }
            Ok(rows) => {
                @let list = rows.as_array().cloned().unwrap_or_default();
                @if list.is_empty() { p id="no-requests" { "No request is waiting." } }
                table {
                    thead { tr { th { "Request" } th { "Requester" } th { "Change" } th { "Actions" } } }
                    tbody {
                        @for r in &list {
                            @let id = text(&r["requestid"]);
                            @let mine = text(&r["requester"]) == frame.user;
                            tr {
                                td { (id) }
                                td { (text(&r["requester"])) }
                                td { (text(&r["change"])) }
                                td class="commands" {
                                    @if mine {
                                        form method="post" action={ (ROOT) "/requests/" (id) "/cancel" } {
                                            (csrf(frame)) button type="submit" data-request=(id) { "Cancel" }
                                        }
                                    } @else {
                                        form method="post" action={ (ROOT) "/requests/" (id) "/approve" } {
                                            (csrf(frame)) button type="submit" data-approve=(id) { "Approve" }
                                        }
                                        form method="post" action={ (ROOT) "/requests/" (id) "/reject" } {
                                            (csrf(frame))
                                            label { "Comment " input type="text" name="comment" required; }
                                            button type="submit" { "Reject" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    page(Some(frame), "Dual Control Requests", panel)
}

/// The console panel: newest first, following live.
pub(super) fn messages(
    frame: &Frame,
    session: &str,
    severity: &str,
    lines: &[String],
    severities: &[char],
) -> Html<String> {
    let source = format!(
        "{ROOT}/events?session={}&severity={}",
        path_segment(session),
        path_segment(severity)
    );
    let panel = html! {
        form method="get" action={ (ROOT) "/messages" } {
            label { "Session " input type="text" name="session" value=(session); }
            label { "Severity "
                select name="severity" {
                    option value="" selected[severity.is_empty()] { "All" }
                    option value="W" selected[severity == "W"] { "Warnings and errors" }
                    option value="E" selected[severity == "E"] { "Errors" }
                }
            }
            button type="submit" { "Filter" }
        }
        ul id="live" data-source=(source) {
            @for (line, sev) in lines.iter().zip(severities) {
                li class={ "sev-" (sev) } { (line) }
            }
        }
    };
    page(Some(frame), "Console", panel)
}

/// Storage systems and host connections with their links.
pub(super) fn hardware(
    frame: &Frame,
    storage: Result<Value, Outcome>,
    hosts: Result<Value, Outcome>,
    outcome: Option<&Outcome>,
) -> Html<String> {
    let rows = |v: &Result<Value, Outcome>| match v {
        Ok(v) => v.as_array().cloned().unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    let panel = html! {
        (result(outcome))
        h2 { "Storage systems" }
        table {
            thead { tr { th { "Name" } th { "Address" } th { "Connected" } th { "Logons" } th { "Last error" } th { "Volumes" } } }
            tbody {
                @for s in rows(&storage) {
                    tr {
                        td { (text(&s["name"])) } td { (text(&s["address"])) } td { (text(&s["connected"])) } td { (text(&s["logons"])) } td { (text(&s["last_error"])) }
                        td {
                            form method="post" action={ (ROOT) "/hardware/volumes" } {
                                (csrf(frame))
                                input type="hidden" name="serial" value=(text(&s["serial"]));
                                button type="submit" data-read=(text(&s["serial"])) { "Read Volumes" }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Host connections" }
        table {
            thead { tr { th { "System" } th { "Kind" } th { "Address" } th { "Connected" } th { "Logons" } th { "PassTicket" } th { "Last error" } } }
            tbody {
                @for h in rows(&hosts) {
                    tr { td { (text(&h["system"])) } td { (text(&h["kind"])) } td { (text(&h["address"])) ":" (text(&h["port"])) } td { (text(&h["connected"])) } td { (text(&h["logons"])) } td { (text(&h["credential"])) } td { (text(&h["last_error"])) } }
                }
            }
        }
        h2 { "Add a storage system" }
        form method="post" action={ (ROOT) "/hardware/storage" } {
            (csrf(frame))
            label { "Serial " input type="text" name="serial" id="storage-serial" required placeholder="75FA120"; }
            label { "HMC address " input type="text" name="address" id="storage-address" required placeholder="127.0.0.1:1750"; }
            label { "HMC user " input type="text" name="user" id="storage-user" required; }
            label { "HMC password " input type="password" name="password" id="storage-password" autocomplete="off" required; }
            button type="submit" id="add-storage" { "Add Storage System" }
        }
        h2 { "Add a host connection" }
        form method="post" action={ (ROOT) "/hardware/host" } {
            (csrf(frame))
            label { "System " input type="text" name="system" id="host-system" required placeholder="SYSA"; }
            label { "Kind " select name="kind" id="host-kind" { option value="zos" { "z/OS" } option value="ztpf" { "z/TPF" } } }
            label { "Address " input type="text" name="address" id="host-address" required placeholder="127.0.0.1"; }
            label { "Port " input type="number" name="port" id="host-port" min="1" max="65535"; }
            label { "User " input type="text" name="user" id="host-user"; }
            label { "Credential "
                select name="credential" id="host-credential" {
                    option value="passticket" { "PassTicket key" }
                    option value="password" { "Password" }
                    option value="passphrase" { "Passphrase" }
                }
            }
            label { "Key, password or passphrase " input type="password" name="secret" id="host-secret" autocomplete="off" required; }
            label { "PassTicket application " input type="text" name="application" id="host-application" placeholder="IOSHMCSM"; }
            button type="submit" id="add-host" { "Add Host Connection" }
        }
    };
    page(Some(frame), "Storage Systems and Hosts", panel)
}

/// The schedule of a task in words.
fn schedule_text(s: &Value) -> String {
    match s["type"].as_str() {
        Some("interval") => format!("every {} minutes", text(&s["interval_mins"])),
        Some("weekly") => format!(
            "weekly on {} at {} UTC",
            s["days"]
                .as_array()
                .map(|d| d.iter().map(text).collect::<Vec<_>>().join(", "))
                .unwrap_or_default(),
            text(&s["time"])
        ),
        Some("once") if s["at"].is_u64() => format!(
            "once at {}",
            s["at"]
                .as_u64()
                .map(crate::gateway::csm::java_medium)
                .unwrap_or_default()
        ),
        _ => "by hand".into(),
    }
}

/// Scheduled tasks: list, create, enable or disable, run now, delete.
pub(super) fn tasks(
    frame: &Frame,
    tasks: Result<Value, Outcome>,
    sessions: Result<Value, Outcome>,
    outcome: Option<&Outcome>,
) -> Html<String> {
    let list = tasks
        .as_ref()
        .ok()
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let names: Vec<String> = sessions
        .as_ref()
        .ok()
        .and_then(Value::as_array)
        .map(|a| a.iter().map(|s| text(&s["name"])).collect())
        .unwrap_or_default();
    let panel = html! {
        (result(outcome))
        @if let Err(e) = &tasks { (result(Some(e))) }
        table {
            thead { tr { th { "Task" } th { "Session" } th { "Command" } th { "Schedule" } th { "Enabled" } th { "Next run" } th { "Last result" } th { "Actions" } } }
            tbody {
                @for t in &list {
                    @let id = text(&t["id"]);
                    tr {
                        td { (text(&t["name"])) }
                        td { (text(&t["session"])) }
                        td { (text(&t["command"])) }
                        td { (schedule_text(&t["schedule"])) }
                        td { (if t["enabled"] == true { "Yes" } else { "No" }) }
                        td { (t["nextRun"].as_u64().map(crate::gateway::csm::java_medium).unwrap_or_default()) }
                        td { (text(&t["lastmessage"])) }
                        td class="commands" {
                            @for (action, label) in [("run", "Run Now"), (if t["enabled"] == true { "disable" } else { "enable" }, if t["enabled"] == true { "Disable" } else { "Enable" }), ("delete", "Delete")] {
                                form method="post" action={ (ROOT) "/tasks/" (id) "/" (action) } data-confirm=[(action == "delete").then_some("Delete this scheduled task?")] {
                                    (csrf(frame)) button type="submit" data-task=(id) data-action=(action) { (label) }
                                }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Create a scheduled task" }
        form method="post" action={ (ROOT) "/tasks" } {
            (csrf(frame))
            label { "Name " input type="text" name="name" id="task-name" required; }
            label { "Session " select name="session" id="task-session" { @for n in &names { option value=(n) { (n) } } } }
            label { "Command " input type="text" name="cmd" id="task-cmd" required placeholder="Backup"; }
            label { "Schedule "
                select name="schedule" id="task-schedule" {
                    option value="interval" { "Every N minutes from now" }
                    option value="weekly" { "Weekly" }
                    option value="once" { "Only by hand" }
                }
            }
            label { "Minutes between runs " input type="number" name="interval_mins" id="task-interval" min="1" value="60"; }
            label { "Days (MON,TUE,…) " input type="text" name="days" id="task-days"; }
            label { "Time (HH:MM UTC) " input type="text" name="time" id="task-time"; }
            label { input type="checkbox" name="enabled" id="task-enabled" checked; " Enabled" }
            label { "Description " input type="text" name="description" id="task-description"; }
            button type="submit" id="create-task" { "Create" }
        }
    };
    page(Some(frame), "Scheduled Tasks", panel)
}

/// Administration: the dual-control mode on top, the users, a new user.
pub(super) fn admin(
    frame: &Frame,
    users: Result<Value, Outcome>,
    outcome: Option<&Outcome>,
) -> Html<String> {
    let list = users
        .as_ref()
        .ok()
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let panel = html! {
        (result(outcome))
        p { "Dual Control mode: " span class=(mode_class(frame.mode)) { (mode_icon(frame.mode)) " " (frame.mode.name()) } " — " a href={ (ROOT) "/requests" } { "request a change" } }
        @if let Err(e) = &users { (result(Some(e))) }
        h2 { "Users" }
        table {
            thead { tr { th { "User" } th { "Role" } th { "Sessions" } th { "Actions" } th { "" } } }
            tbody {
                @for u in &list {
                    @let name = text(&u["name"]);
                    tr {
                        td { (name) }
                        td { (text(&u["role"])) }
                        td { (text(&u["grant"]["sessions"])) }
                        td { (text(&u["grant"]["actions"])) }
                        td { @if text(&u["role"]) == "Operator" { a href={ (ROOT) "/admin/access?user=" (path_segment(&name)) } { "View/Modify Access" } } }
                    }
                }
            }
        }
        h2 { "Add a user" }
        form method="post" action={ (ROOT) "/admin/users" } {
            (csrf(frame))
            label { "Name " input type="text" name="name" id="user-name" required; }
            label { "Role "
                select name="role" id="user-role" {
                    option value="Operator" { "Operator" }
                    option value="Monitor" { "Monitor" }
                    option value="Administrator" { "Administrator" }
                    option value="User Administrator" { "User Administrator" }
                }
            }
            label { "Password " input type="password" name="password" id="user-password" autocomplete="new-password" required; }
            button type="submit" id="add-user" { "Add User" }
        }
    };
    page(Some(frame), "Administration", panel)
}

/// The View/Modify Access wizard for an Operator: first the sessions, then the
/// actions, by CSM's categories.
pub(super) fn access(
    frame: &Frame,
    user: &str,
    users: Result<Value, Outcome>,
    sessions: Result<Value, Outcome>,
    outcome: Option<&Outcome>,
) -> Html<String> {
    use crate::policy::access::{ActionCategory, SessionAction};
    let grant = users
        .as_ref()
        .ok()
        .and_then(Value::as_array)
        .and_then(|l| l.iter().find(|u| text(&u["name"]) == user))
        .map(|u| u["grant"].clone())
        .unwrap_or(Value::Null);
    let all_sessions = grant["sessions"] == "all";
    let all_actions = grant["actions"] == "default";
    let has = |key: &str, v: &str| {
        grant[key]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x.as_str() == Some(v)))
    };
    let names: Vec<String> = sessions
        .as_ref()
        .ok()
        .and_then(Value::as_array)
        .map(|a| a.iter().map(|s| text(&s["name"])).collect())
        .unwrap_or_default();
    let categories = [
        ActionCategory::RemoteCopy,
        ActionCategory::PointInTimeCopy,
        ActionCategory::Misc,
    ];
    let panel = html! {
        (result(outcome))
        form method="post" action={ (ROOT) "/admin/access" } {
            (csrf(frame))
            input type="hidden" name="user" value=(user);
            fieldset {
                legend { "1. Sessions " (user) " may manage" }
                label { input type="checkbox" name="all_sessions" id="all-sessions" checked[all_sessions]; " All sessions, including those created later" }
                @for n in &names {
                    label { input type="checkbox" name="session" value=(n) checked[has("sessions", n)]; " " (n) }
                }
            }
            fieldset {
                legend { "2. Actions" }
                label { input type="checkbox" name="all_actions" id="all-actions" checked[all_actions]; " Every action" }
                @for category in categories {
                    fieldset {
                        legend { (category.name()) }
                        @for a in SessionAction::ALL.iter().filter(|a| a.category() == category) {
                            label { input type="checkbox" name="action" value=(a.name()) checked[has("actions", a.name())]; " " (a.name()) }
                        }
                    }
                }
            }
            button type="submit" id="save-access" { "Save Access" }
        }
    };
    page(Some(frame), "View/Modify Access", panel)
}
