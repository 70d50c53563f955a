//! Reads computed once for every door (csm.md §3.5, rest.md §2.1, §2.4): the CSM
//! protocol's JSON, REST's JSON and the console are encodings of these values, so a
//! fact such as "recoverable" or "pending approval" has one rule.

use std::sync::Arc;

use crate::policy::SessionType;
use crate::policy::engine::{Command, Engine};
use crate::policy::retention::Backup;
use crate::policy::schedule::Task;
use crate::policy::session::{Properties, Session};

/// A session as every door lists it, computed in one place (csm.md §3.5,
/// rest.md §2.1): the CSM protocol's `session.list` and REST's `/sessions` rows
/// are two encodings of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSummary {
    /// The name.
    pub name: String,
    /// FC, SGC, MM or HS.
    pub kind: SessionType,
    /// The description.
    pub description: String,
    /// The state's name.
    pub state: &'static str,
    /// The status's name.
    pub status: &'static str,
    /// Copy sets.
    pub copy_sets: usize,
    /// Background copy under way.
    pub copying: bool,
    /// A recover or restore is possible (policy.md §5.3).
    pub recoverable: bool,
    /// The status is Severe or the last command failed.
    pub has_error: bool,
    /// The last command's failure.
    pub error: Option<String>,
    /// A command is under way.
    pub busy: bool,
    /// Where production runs (`H1`, or `H2` after a Metro Mirror Recover or swap).
    pub production: &'static str,
    /// CSM's `hyperswapstatus` (rest.md §2.1).
    pub hyperswap: &'static str,
}

impl SessionSummary {
    /// The summary of `s`.
    pub fn of(s: &Session) -> SessionSummary {
        SessionSummary {
            name: s.name.clone(),
            kind: s.kind(),
            description: s.description.clone(),
            state: s.state.name(),
            status: s.status.name(),
            copy_sets: s.copy_sets.len(),
            copying: s.copying,
            recoverable: s.has_recoverable(),
            has_error: s.status == crate::policy::session::SessionStatus::Severe
                || s.last_error.is_some(),
            error: s.last_error.clone(),
            busy: s.busy.is_some(),
            production: s.mirror().production.name(),
            hyperswap: s.hyperswap_status(),
        }
    }
}

/// The rendered rows of a session list, kept between reads: a read after a change
/// renders again only the rows whose summary changed (20,000 sessions are 4.7 MB of
/// JSON; a change to one re-renders one row), and copies the others from the last
/// text. The text is the JSON array of the rows, exactly as serialising the list at
/// once writes it.
#[derive(Debug, Default)]
pub struct RenderedRows {
    /// The last text.
    text: Option<Arc<str>>,
    /// Each row of it, in name order: its summary and where its JSON is in `text`.
    rows: Vec<(SessionSummary, std::ops::Range<usize>)>,
}

impl RenderedRows {
    /// The JSON array of the rows of `summaries` (in name order, as the state keeps
    /// sessions), each written by `render` unless the last text holds the same
    /// summary's row. Rows of sessions no longer listed are dropped.
    pub fn render(
        &mut self,
        summaries: Vec<SessionSummary>,
        render: impl Fn(&SessionSummary) -> String,
    ) -> Arc<str> {
        let last = self.text.as_deref().unwrap_or("");
        let mut out = String::with_capacity(last.len() + 256);
        let mut rows = Vec::with_capacity(summaries.len());
        let mut old = self.rows.iter().peekable();
        out.push('[');
        for (i, summary) in summaries.into_iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            // Both lists are in name order: the old rows before this name are gone.
            while old.next_if(|(o, _)| o.name < summary.name).is_some() {}
            let start = out.len();
            let kept = old
                .next_if(|(o, _)| o.name == summary.name)
                .filter(|(o, _)| *o == summary)
                .and_then(|(_, range)| last.get(range.clone()));
            match kept {
                Some(row) => out.push_str(row),
                None => out.push_str(&render(&summary)),
            }
            rows.push((summary, start..out.len()));
        }
        out.push(']');
        let text: Arc<str> = out.into();
        self.text = Some(text.clone());
        self.rows = rows;
        text
    }
}

/// One backup of an SGC session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupView {
    /// Its id (seconds since the epoch, as CSM numbers them).
    pub id: u64,
    /// When it was taken, ms since the epoch.
    pub time_ms: u64,
    /// When the retention period lets it go, if the session has one.
    pub expires_ms: Option<u64>,
    /// It can be recovered or restored (policy.md §3.5).
    pub recoverable: bool,
    /// It is the backup recovered to R1 now.
    pub recovered: bool,
}

/// One session in full: its summary and what its page shows.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionDetail {
    /// What every list shows.
    pub summary: SessionSummary,
    /// When it was created, ms since the epoch.
    pub created_ms: u64,
    /// The commands its state allows, by CSM's names.
    pub available: Vec<&'static str>,
    /// Tracks left to copy, while background copy runs and was measured.
    pub out_of_sync: Option<u64>,
    /// FC: when the last Flash was taken.
    pub last_flash_ms: Option<u64>,
    /// SGC: its backups, oldest first.
    pub backups: Vec<BackupView>,
    /// SGC: the backup recovered to R1, while that relationship stands.
    pub recovered: Option<u64>,
    /// Its properties.
    pub properties: Properties,
    /// The page of copy sets asked for: its first index, and `(H1, partner)` ids
    /// (no partner: an SGC copy set with no recovery volume).
    pub copy_sets: (usize, Vec<(String, Option<String>)>),
}

impl SessionDetail {
    /// Session `name` as `engine` holds it, with copy sets `offset..offset + limit`.
    pub fn of(engine: &Engine, name: &str, offset: usize, limit: usize) -> Option<SessionDetail> {
        let s = engine.state().sessions.get(name)?;
        let retention_ms = match &s.properties {
            Properties::Sgc(p) if p.policy.retention_ms > 0 => Some(p.policy.retention_ms),
            _ => None,
        };
        let backup = |b: &Backup| BackupView {
            id: b.id,
            time_ms: b.time_ms,
            expires_ms: retention_ms.map(|r| b.time_ms.saturating_add(r)),
            recoverable: s.recoverable(b.id),
            recovered: s.recovered() == Some(b.id),
        };
        Some(SessionDetail {
            summary: SessionSummary::of(s),
            created_ms: s.created_ms,
            available: engine.available_commands(name).unwrap_or_default(),
            out_of_sync: engine.copy_progress(name),
            last_flash_ms: s.last_flash_ms(),
            backups: s.backups().iter().map(backup).collect(),
            recovered: s.recovered(),
            properties: s.properties.clone(),
            copy_sets: (
                offset,
                s.copy_sets
                    .iter()
                    .skip(offset)
                    .take(limit)
                    .map(|c| {
                        (
                            c.h1.to_string(),
                            c.partner.as_ref().map(ToString::to_string),
                        )
                    })
                    .collect(),
            ),
        })
    }

    /// FC, SGC, MM or HS.
    pub fn kind(&self) -> SessionType {
        self.summary.kind
    }
}

/// A scheduled task as every door shows it: the task and whether a dual-control
/// request holds a change to it (policy.md §2.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskView {
    /// The task as stored.
    pub task: Task,
    /// A dual-control request holds a change to it.
    pub pending_approval: bool,
}

impl TaskView {
    /// Every task, in number order.
    pub fn all(engine: &Engine) -> Vec<TaskView> {
        engine
            .state()
            .tasks
            .values()
            .map(|t| TaskView {
                task: t.clone(),
                pending_approval: held_for_task(engine, t.id),
            })
            .collect()
    }
}

/// Whether a dual-control request holds a change to task `id`.
fn held_for_task(engine: &Engine, id: u64) -> bool {
    engine.state().held.values().any(|h| {
        matches!(
            h.command,
            Command::ModifyTask { id: t, .. }
                | Command::EnableTask { id: t }
                | Command::DisableTask { id: t }
                | Command::RunTask { id: t }
                | Command::DeleteTask { id: t } if t == id
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(name: &str, description: &str) -> SessionSummary {
        SessionSummary {
            name: name.into(),
            kind: SessionType::Fc,
            description: description.into(),
            state: "Defined",
            status: "Inactive",
            copy_sets: 0,
            copying: false,
            recoverable: false,
            has_error: false,
            error: None,
            busy: false,
            production: "H1",
            hyperswap: "",
        }
    }

    fn row(s: &SessionSummary) -> String {
        serde_json::json!({ "name": s.name, "description": s.description }).to_string()
    }

    /// The kept rows give the text a whole serialisation gives, read after read,
    /// through changes, additions and removals; and only changed rows are rendered.
    #[test]
    fn kept_rows_read_as_the_whole_list_and_only_changes_are_rendered() {
        let mut rows = RenderedRows::default();
        let mut list: Vec<SessionSummary> =
            (0..50).map(|i| summary(&format!("S{i:02}"), "")).collect();
        let whole = |list: &[SessionSummary]| {
            let all: Vec<serde_json::Value> = list
                .iter()
                .map(|s| serde_json::from_str(&row(s)).unwrap())
                .collect();
            serde_json::to_string(&all).unwrap()
        };
        let rendered = std::cell::Cell::new(0);
        let counting = |s: &SessionSummary| {
            rendered.set(rendered.get() + 1);
            row(s)
        };
        assert_eq!(&*rows.render(list.clone(), counting), whole(&list));
        assert_eq!(rendered.replace(0), 50);
        assert_eq!(&*rows.render(list.clone(), counting), whole(&list));
        assert_eq!(rendered.replace(0), 0, "nothing changed");
        list[7].description = "changed".into();
        list.remove(20);
        list.push(summary("S99", "new"));
        list.insert(0, summary("A", "first"));
        assert_eq!(&*rows.render(list.clone(), counting), whole(&list));
        assert_eq!(rendered.replace(0), 3, "the changed row and the new ones");
        assert_eq!(rows.rows.len(), 51, "the removed session's row is dropped");
        assert_eq!(&*rows.render(Vec::new(), counting), "[]");
        assert!(rows.rows.is_empty());
    }
}
