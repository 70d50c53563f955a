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
pub(super) fn new_session(frame: &Frame, refused: Option<&Outcome>) -> Html<String> {
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
) -> Html<String> {
    let rows = |v: &Result<Value, Outcome>| match v {
        Ok(v) => v.as_array().cloned().unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    let panel = html! {
        h2 { "Storage systems" }
        table {
            thead { tr { th { "Name" } th { "Address" } th { "Connected" } th { "Logons" } th { "Last error" } } }
            tbody {
                @for s in rows(&storage) {
                    tr { td { (text(&s["name"])) } td { (text(&s["address"])) } td { (text(&s["connected"])) } td { (text(&s["logons"])) } td { (text(&s["lasterror"])) } }
                }
            }
        }
        h2 { "Host connections" }
        table {
            thead { tr { th { "System" } th { "Kind" } th { "Address" } th { "Connected" } th { "Logons" } th { "PassTicket" } th { "Last error" } } }
            tbody {
                @for h in rows(&hosts) {
                    tr { td { (text(&h["system"])) } td { (text(&h["kind"])) } td { (text(&h["address"])) ":" (text(&h["port"])) } td { (text(&h["connected"])) } td { (text(&h["logons"])) } td { (text(&h["credential"])) } td { (text(&h["lasterror"])) } }
                }
            }
        }
    };
    page(Some(frame), "Storage Systems and Hosts", panel)
}
