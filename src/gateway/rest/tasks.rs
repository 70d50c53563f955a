//! Scheduled tasks under `/sessions/scheduledtasks` (rest.md §4): CSM's task JSON in
//! and out, each task one command on one session (policy.md §7).

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use serde_json::{Value, json};

use super::forms::{self, Form};
use super::{Answer, App, User};
use crate::gateway::ops::{Operation, ScheduleSpec};
use crate::gateway::views::TaskView;
use crate::policy::console::ids;
use crate::policy::schedule::Schedule;

pub(super) fn routes() -> Router<App> {
    Router::new()
        .route("/sessions/scheduledtasks", get(list).put(create))
        .route("/sessions/scheduledtasks/{id}", get(one))
        .route("/sessions/scheduledtasks/enable/{id}", post(enable))
        .route("/sessions/scheduledtasks/enable/{id}/{at}", post(enable_at))
        .route("/sessions/scheduledtasks/disable/{id}", post(disable))
        .route("/sessions/scheduledtasks/delete/{id}", post(delete))
        .route("/sessions/scheduledtasks/cancel/{id}", post(cancel))
        .route("/sessions/scheduledtasks/duplicate/{id}", put(duplicate))
        .route("/sessions/scheduledtasks/{id}/{sync}", post(run))
        .route("/sessions/scheduledtasks/{id}/runat/{at}", post(run_at))
        .route(
            "/sessions/scheduledtasks/{id}/{sync}/step/{step}",
            post(run_step),
        )
        // pyCSM's run_task_now posts without the /sessions prefix (research §10.1 e).
        .route("/scheduledtasks/{id}/{sync}/step/{step}", post(run_step))
}

/// CSM's schedule object for `s`.
fn schedule_json(s: &Schedule) -> Value {
    match *s {
        Schedule::Once { at_ms: None } => json!({ "type": "NoTaskSchedule" }),
        Schedule::Once { at_ms: Some(at) } => json!({ "type": "OnceTaskSchedule", "runAt": at }),
        Schedule::Weekly {
            days,
            minute_of_day,
        } => json!({
            "type": "WeeklyTaskSchedule",
            "timeOfDay": { "hour": minute_of_day / 60, "minute": minute_of_day % 60 },
            "days": crate::policy::schedule::weekday_names(days),
        }),
        Schedule::Interval {
            start_ms,
            interval_ms,
        } => {
            json!({ "type": "IntervalTaskSchedule", "interval": interval_ms, "startTime": start_ms })
        }
    }
}

/// A task as CSM shows it (research §10.8).
pub(super) fn task_json(view: &TaskView) -> Value {
    let t = &view.task;
    json!({
        "id": t.id,
        "name": t.name,
        "description": t.description,
        "schedule": schedule_json(&t.schedule),
        "actions": [{ "step": 1, "sessionName": t.session, "command": t.command.name() }],
        "affectedSession": [t.session],
        "enabled": t.enabled,
        "running": false,
        "pendingApproval": view.pending_approval,
        "nextRun": t.next_run_ms,
        "lastRan": t.last_run_ms,
        "lastmessage": t.last_result,
        "owner": t.owner,
        "runtaskonsuccess": 0,
        "runtaskonfailure": 0,
    })
}

async fn list(State(app): State<App>) -> Answer {
    match app
        .read(|e| TaskView::all(e).iter().map(task_json).collect::<Vec<_>>())
        .await
    {
        Ok(v) => Answer::ok(json!(v)),
        Err(a) => a,
    }
}

fn task_id(app: &App, id: &str) -> Result<u64, Answer> {
    id.parse()
        .map_err(|_| Answer::bad(app, format!("{id} is not a task id")))
}

/// Reads task `id`, or answers that there is none.
async fn read_task(app: &App, id: u64) -> Result<TaskView, Answer> {
    let found = app
        .read(move |e| TaskView::all(e).into_iter().find(|t| t.task.id == id))
        .await?;
    found.ok_or_else(|| Answer::bad(app, format!("there is no scheduled task {id}")))
}

async fn one(State(app): State<App>, Path(id): Path<String>) -> Answer {
    let id = match task_id(&app, &id) {
        Ok(id) => id,
        Err(a) => return a,
    };
    match read_task(&app, id).await {
        Ok(t) => Answer::ok(task_json(&t)),
        Err(a) => a,
    }
}

/// The CSM protocol's schedule (csm.md §3.4) for CSM's schedule object.
fn csm_schedule(s: &Value, now_ms: u64) -> Result<ScheduleSpec, String> {
    let kind = s["type"].as_str().ok_or("the schedule has no type")?;
    Ok(match kind {
        "NoTaskSchedule" => ScheduleSpec::Once { at: None },
        "OnceTaskSchedule" => ScheduleSpec::Once {
            at: Some(s["runAt"].as_u64().ok_or("runAt is ms since the epoch")?),
        },
        "WeeklyTaskSchedule" => {
            let hour = s["timeOfDay"]["hour"]
                .as_u64()
                .ok_or("timeOfDay.hour is missing")?;
            let minute = s["timeOfDay"]["minute"].as_u64().unwrap_or(0);
            let days: Vec<String> = s["days"]
                .as_array()
                .ok_or("days is a list of weekday names")?
                .iter()
                .filter_map(Value::as_str)
                .map(|d| d.get(..3).unwrap_or(d).to_owned())
                .collect();
            ScheduleSpec::Weekly {
                days,
                time: format!("{hour:02}:{minute:02}"),
            }
        }
        "IntervalTaskSchedule" => {
            let interval = s["interval"].as_u64().ok_or("interval is ms")?;
            if interval == 0 || interval % 60_000 != 0 {
                return Err(format!(
                    "interval {interval} ms is not a whole number of minutes"
                ));
            }
            let start = s["startTime"].as_u64().unwrap_or(now_ms);
            ScheduleSpec::Interval {
                start,
                interval_mins: interval / 60_000,
            }
        }
        other => {
            return Err(format!(
                "schedule type {other}: NoTaskSchedule, OnceTaskSchedule, WeeklyTaskSchedule or IntervalTaskSchedule"
            ));
        }
    })
}

/// `PUT /sessions/scheduledtasks`, form `json`: CSM's task object with one command
/// action (rest.md §4).
async fn create(
    State(app): State<App>,
    Extension(User(user)): Extension<User>,
    body: Bytes,
) -> Answer {
    let form = Form::parse(&body);
    let Some(text) = form.get("json") else {
        return Answer::bad(&app, "the form field json (the task) is missing");
    };
    let task: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => return Answer::bad(&app, format!("the task is not JSON: {e}")),
    };
    let Some(name) = task["name"].as_str() else {
        return Answer::bad(&app, "the task has no name");
    };
    let actions = task["actions"].as_array().cloned().unwrap_or_default();
    let [action] = actions.as_slice() else {
        return Answer::bad(
            &app,
            "a zgate task runs one command: actions holds exactly one {step, sessionName, command}",
        );
    };
    let (Some(session), Some(command)) =
        (action["sessionName"].as_str(), action["command"].as_str())
    else {
        return Answer::bad(
            &app,
            "the action needs sessionName and command (a wait-for-state step is not supported)",
        );
    };
    let schedule = match csm_schedule(&task["schedule"], app.clock.unix_millis()) {
        Ok(s) => s,
        Err(e) => return Answer::bad(&app, e),
    };
    let enabled = task["enabled"].as_bool().unwrap_or(true);
    let description = task["description"].as_str().unwrap_or_default();
    let op = Operation::TaskCreate {
        name: name.to_owned(),
        session: session.to_owned(),
        cmd: command.to_owned(),
        schedule,
        enabled,
        description: description.to_owned(),
    };
    app.op(&user, op).await
}

async fn simple(app: &App, user: &str, id: &str, op: impl FnOnce(u64) -> Operation) -> Answer {
    match task_id(app, id) {
        Ok(id) => app.op(user, op(id)).await,
        Err(a) => a,
    }
}

async fn enable(
    State(app): State<App>,
    Extension(User(user)): Extension<User>,
    Path(id): Path<String>,
) -> Answer {
    simple(&app, &user, &id, |id| Operation::TaskEnable { id }).await
}

async fn disable(
    State(app): State<App>,
    Extension(User(user)): Extension<User>,
    Path(id): Path<String>,
) -> Answer {
    simple(&app, &user, &id, |id| Operation::TaskDisable { id }).await
}

async fn delete(
    State(app): State<App>,
    Extension(User(user)): Extension<User>,
    Path(id): Path<String>,
) -> Answer {
    simple(&app, &user, &id, |id| Operation::TaskDelete { id }).await
}

/// `POST /sessions/scheduledtasks/{id}/{synchronous}`: runs the task now; the answer
/// is its command's outcome either way (zgate waits for it, up to a minute).
async fn run(
    State(app): State<App>,
    Extension(User(user)): Extension<User>,
    Path((id, sync)): Path<(String, String)>,
) -> Answer {
    if forms::boolean(&sync).is_none() && sync != "synchronous" {
        return Answer::bad(&app, format!("{sync} is not True, False or synchronous"));
    }
    simple(&app, &user, &id, |id| Operation::TaskRun { id }).await
}

async fn run_step(
    State(app): State<App>,
    Extension(User(user)): Extension<User>,
    Path((id, sync, step)): Path<(String, String, String)>,
) -> Answer {
    if forms::boolean(&sync).is_none() {
        return Answer::bad(&app, format!("{sync} is not true or false"));
    }
    if !matches!(step.as_str(), "0" | "1") {
        return Answer::bad(
            &app,
            format!("step {step}: a zgate task has one step (0 or 1 runs it)"),
        );
    }
    simple(&app, &user, &id, |id| Operation::TaskRun { id }).await
}

async fn cancel(State(app): State<App>, Path(id): Path<String>) -> Answer {
    let id = match task_id(&app, &id) {
        Ok(id) => id,
        Err(a) => return a,
    };
    match read_task(&app, id).await {
        Ok(_) => Answer::error(
            &app,
            StatusCode::CONFLICT,
            ids::COMMAND_NOT_VALID,
            format!(
                "scheduled task {id} is not running: a zgate task's one command is handed to the storage system at once and cannot be cancelled midway"
            ),
        ),
        Err(a) => a,
    }
}

/// `yyyy-MM-dd'T'HH-mm` (pyCSM's format, UTC here) as ms since the epoch.
fn parse_time(text: &str) -> Option<u64> {
    let (date, time) = text.split_once('T')?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let (h, min) = time.split_once(['-', ':'])?;
    let (h, min) = (h.parse::<i64>().ok()?, min.parse::<i64>().ok()?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || h > 23 || min > 59 || h < 0 || min < 0
    {
        return None;
    }
    // Days from the civil date (proleptic Gregorian), after H. Hinnant.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from((days * 86_400 + h * 3600 + min * 60) * 1000).ok()
}

/// The task's schedule with its start moved to `at` (interval) or made `at` (once);
/// a weekly schedule keeps its days.
fn moved(s: &Schedule, at: u64) -> Schedule {
    match *s {
        Schedule::Interval { interval_ms, .. } => Schedule::Interval {
            start_ms: at,
            interval_ms,
        },
        Schedule::Once { .. } => Schedule::Once { at_ms: Some(at) },
        ref weekly => weekly.clone(),
    }
}

/// `POST /sessions/scheduledtasks/enable/{id}/{yyyy-MM-dd'T'HH-mm}`: the schedule
/// starts at that time (an interval's first run, a once task's run), then the task is
/// enabled.
async fn enable_at(
    State(app): State<App>,
    Extension(User(user)): Extension<User>,
    Path((id, at)): Path<(String, String)>,
) -> Answer {
    reschedule(&app, &user, &id, &at).await
}

/// `POST /sessions/scheduledtasks/{id}/runat/{yyyy-MM-dd'T'HH-mm}`: as `enable_at`
/// (zgate keeps one schedule per task, so the run at that time is the schedule's).
async fn run_at(
    State(app): State<App>,
    Extension(User(user)): Extension<User>,
    Path((id, at)): Path<(String, String)>,
) -> Answer {
    reschedule(&app, &user, &id, &at).await
}

/// Moves task `id`'s schedule to `at`, then enables it (two operations, two audit
/// entries; a held first one is answered as it is).
async fn reschedule(app: &App, user: &str, id: &str, at: &str) -> Answer {
    let id = match task_id(app, id) {
        Ok(id) => id,
        Err(a) => return a,
    };
    let Some(at_ms) = parse_time(at) else {
        return Answer::bad(app, format!("{at} is not yyyy-MM-dd'T'HH-mm (UTC)"));
    };
    let task = match read_task(app, id).await {
        Ok(t) => t,
        Err(a) => return a,
    };
    let modify = Operation::TaskModify {
        id,
        schedule: ScheduleSpec::of(&moved(&task.task.schedule, at_ms)),
    };
    let modified = app.op(user, modify).await;
    if modified.0 != StatusCode::OK || modified.1["outcome"] == "requested" {
        return modified;
    }
    app.op(user, Operation::TaskEnable { id }).await
}

/// `PUT /sessions/scheduledtasks/duplicate/{id}`: a disabled copy named `Copy of …`.
async fn duplicate(
    State(app): State<App>,
    Extension(User(user)): Extension<User>,
    Path(id): Path<String>,
) -> Answer {
    let id = match task_id(&app, &id) {
        Ok(id) => id,
        Err(a) => return a,
    };
    let task = match read_task(&app, id).await {
        Ok(t) => t,
        Err(a) => return a,
    };
    let op = Operation::TaskCreate {
        name: format!("Copy of {}", task.task.name),
        session: task.task.session.clone(),
        cmd: task.task.command.name().to_owned(),
        schedule: ScheduleSpec::of(&task.task.schedule),
        enabled: false,
        description: String::new(),
    };
    app.op(&user, op).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pycsm_times_parse_as_utc() {
        // 2026-11-25 00:00 UTC.
        assert_eq!(parse_time("2026-11-25T00-00"), Some(1_795_564_800_000));
        assert_eq!(
            parse_time("2026-11-25T13-09"),
            Some(1_795_564_800_000 + (13 * 60 + 9) * 60_000)
        );
        assert_eq!(parse_time("1970-01-01T00:01"), Some(60_000));
        for bad in ["2026-13-01T00-00", "2026-11-25", "x", "2026-11-25T24-00"] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }
}
