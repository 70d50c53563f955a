//! Preparing scheduled-task commands (`protocol-specs/policy.md` §7).

use super::commands::*;
use super::{Command, Effect, Engine, Refusal, codes};
use crate::policy::SessionType;
use crate::policy::access::Principal;
use crate::policy::console::ids;
use crate::policy::engine::state::Record;
use crate::policy::schedule::Task;
use crate::policy::session::SessionCommand;

impl Engine {
    /// A scheduled-task command, checked; nothing changes yet.
    pub(super) fn prepare_task(
        &self,
        principal: &Principal,
        command: &Command,
        now_ms: u64,
    ) -> Result<Effect, Refusal> {
        match command {
            Command::CreateTask {
                name,
                session,
                command,
                schedule,
                enabled,
                description,
            } => {
                check_name("a task name", name, MAX_NAME)?;
                check_text("a task description", description)?;
                let s = self.session(session)?;
                let fits = match s.kind() {
                    SessionType::Fc => matches!(
                        command,
                        SessionCommand::Flash
                            | SessionCommand::InitiateBackgroundCopy
                            | SessionCommand::RefreshStates
                    ),
                    SessionType::Sgc => matches!(
                        command,
                        SessionCommand::Backup | SessionCommand::RefreshStates
                    ),
                    // A swap or a failover is an operator's decision, never a timer's.
                    SessionType::Mm | SessionType::Hs => matches!(
                        command,
                        SessionCommand::StartH1H2
                            | SessionCommand::StartH2H1
                            | SessionCommand::Suspend
                            | SessionCommand::RefreshStates
                    ),
                };
                if !fits {
                    return Err(Refusal::bad(
                        codes::BAD_SCHEDULE,
                        format!(
                            "a {} session has no scheduled {}",
                            s.kind().code(),
                            command.name()
                        ),
                    ));
                }
                schedule
                    .check(*command)
                    .map_err(|why| Refusal::bad(codes::BAD_SCHEDULE, why))?;
                let id = self.state.next_task;
                let task = Task {
                    id,
                    name: name.clone(),
                    session: session.clone(),
                    command: *command,
                    schedule: schedule.clone(),
                    enabled: *enabled,
                    next_run_ms: if *enabled {
                        schedule.next_after(now_ms)
                    } else {
                        None
                    },
                    last_run_ms: None,
                    last_result: None,
                    owner: principal.user.clone(),
                    description: description.clone(),
                };
                Ok(task_effect(
                    task,
                    format!("Scheduled task {name} ({id}) was created."),
                ))
            }
            Command::ModifyTask { id, schedule } => {
                let mut task = self.task(*id)?.clone();
                schedule
                    .check(task.command)
                    .map_err(|why| Refusal::bad(codes::BAD_SCHEDULE, why))?;
                task.schedule = schedule.clone();
                task.next_run_ms = if task.enabled {
                    schedule.next_after(now_ms)
                } else {
                    None
                };
                Ok(task_effect(
                    task,
                    format!("Scheduled task {id} was changed."),
                ))
            }
            Command::EnableTask { id } => {
                let mut task = self.task(*id)?.clone();
                task.enabled = true;
                task.next_run_ms = task.schedule.next_after(now_ms);
                if task.next_run_ms.is_none() {
                    return Err(Refusal::bad(
                        codes::BAD_SCHEDULE,
                        format!(
                            "scheduled task {id} has no run after now; change its schedule first"
                        ),
                    ));
                }
                Ok(task_effect(
                    task,
                    format!("Scheduled task {id} was enabled."),
                ))
            }
            Command::DisableTask { id } => {
                let mut task = self.task(*id)?.clone();
                task.enabled = false;
                task.next_run_ms = None;
                Ok(task_effect(
                    task,
                    format!("Scheduled task {id} was disabled."),
                ))
            }
            Command::RunTask { id } => {
                let task = self.task(*id)?;
                let mut effect = self.prepare_run(&task.session, task.command, now_ms)?;
                let mut task = task.clone();
                task.last_run_ms = Some(now_ms);
                effect.text = format!(
                    "Scheduled task {} ({id}) was run: {}",
                    task.name, effect.text
                );
                // As when it runs on its schedule (policy.md §7.2): its last result,
                // then IWNR2212I.
                task.last_result = Some(format!("{} {}", effect.id, effect.text));
                effect.then_tell = Some((
                    ids::TASK_FINISHED,
                    format!("The scheduled task {} has finished running.", task.name),
                ));
                Ok(effect.with(Record::Task(task)))
            }
            Command::DeleteTask { id } => {
                self.task(*id)?;
                Ok(Effect::done(
                    ids::CHANGED,
                    None,
                    format!("Scheduled task {id} was deleted."),
                )
                .with(Record::TaskRemoved(*id)))
            }
            _ => Err(Refusal::bad(codes::BAD_PROPERTY, "not a task command")),
        }
    }
}
