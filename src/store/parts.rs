//! A snapshot kept in parts (`protocol-specs/store.md` §6.2): one row per user,
//! storage system, inventory, host connection, session and task, and one row of
//! counters for the rest of the [`State`]. A snapshot rewrites only the parts the
//! records since the last one touched (and the counters), so its cost follows what
//! changed, not the size of the state: with 20,000 sessions and changes to 64 of
//! them, a snapshot writes 64 sessions, not 20,000.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::ds8k::ids::VolumeId;
use crate::policy::audit::Head;
use crate::policy::dual_control::{DualControl, RequestId};
use crate::policy::engine::{Held, InFlight, Record, State, User};
use crate::policy::inventory::{HostConnection, StorageSystem, VolumeFacts};
use crate::policy::schedule::{Task, TaskId};
use crate::policy::session::Session;
use crate::policy::storage::ActionId;

/// One part of a snapshot, named as its row's key is (store.md §6.2: kind code, name).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Part {
    /// Kind 0: everything not kept by entity (dual control, held commands, actions
    /// under way, the next ids, the audit head, server properties). Written with
    /// every snapshot.
    Counters,
    /// Kind 1: a user, by name.
    User(String),
    /// Kind 2: a storage system, by serial.
    System(String),
    /// Kind 3: a storage system's volumes as last read, by serial.
    Inventory(String),
    /// Kind 4: a host connection, by system name.
    Host(String),
    /// Kind 5: a session, by name.
    Session(String),
    /// Kind 6: a scheduled task, by id (decimal).
    Task(TaskId),
}

impl Part {
    /// The row's key: the kind code and the name.
    pub fn key(&self) -> PartKey {
        match self {
            Part::Counters => (0, String::new()),
            Part::User(n) => (1, n.clone()),
            Part::System(n) => (2, n.clone()),
            Part::Inventory(n) => (3, n.clone()),
            Part::Host(n) => (4, n.clone()),
            Part::Session(n) => (5, n.clone()),
            Part::Task(id) => (6, id.to_string()),
        }
    }

    /// The part a row's key names; the error says why it names none.
    pub fn from_key(kind: u8, name: &str) -> Result<Part, String> {
        Ok(match kind {
            0 if name.is_empty() => Part::Counters,
            1 => Part::User(name.to_owned()),
            2 => Part::System(name.to_owned()),
            3 => Part::Inventory(name.to_owned()),
            4 => Part::Host(name.to_owned()),
            5 => Part::Session(name.to_owned()),
            6 => Part::Task(
                name.parse()
                    .map_err(|_| format!("snapshot part 6 has a task id {name:?}"))?,
            ),
            _ => {
                return Err(format!(
                    "snapshot part ({kind}, {name:?}) is of no known kind"
                ));
            }
        })
    }
}

/// The parts `record` changes, besides [`Part::Counters`] (written every time).
/// [`State::apply`] changes nothing else: the property test
/// `incremental_snapshots_plus_tail_equal_full_replay` (tests/store.rs) checks it.
pub fn touched(record: &Record, mut mark: impl FnMut(Part)) {
    match record {
        Record::User(u) => mark(Part::User(u.name.clone())),
        Record::UserRemoved(name) => mark(Part::User(name.clone())),
        Record::StorageSystem(s) => mark(Part::System(s.serial.clone())),
        Record::StorageSystemRemoved(serial) => {
            mark(Part::System(serial.clone()));
            mark(Part::Inventory(serial.clone()));
        }
        Record::Inventory { serial, .. } => mark(Part::Inventory(serial.clone())),
        Record::HostConnection(h) => mark(Part::Host(h.system.clone())),
        Record::HostConnectionRemoved(system) => mark(Part::Host(system.clone())),
        Record::Session(s) => mark(Part::Session(s.name.clone())),
        Record::SessionChanged { name, .. } => mark(Part::Session(name.clone())),
        Record::SessionRemoved(name) => mark(Part::Session(name.clone())),
        Record::Task(t) => mark(Part::Task(t.id)),
        Record::TaskRemoved(id) => mark(Part::Task(*id)),
        Record::DualControl { .. }
        | Record::ActionStarted(_)
        | Record::ActionFinished(_)
        | Record::Audit(_)
        | Record::ServerProperty { .. } => {}
    }
}

/// Adds to `dirty` the parts each of `records` touches ([`touched`]).
pub fn note_touched<'a>(records: impl IntoIterator<Item = &'a Record>, dirty: &mut BTreeSet<Part>) {
    for record in records {
        touched(record, |part| {
            dirty.insert(part);
        });
    }
}

/// The counters' part: the state's fields that are not kept by entity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    dual: DualControl,
    held: BTreeMap<RequestId, Held>,
    in_flight: BTreeMap<ActionId, InFlight>,
    next_action: ActionId,
    next_user: u64,
    next_task: TaskId,
    audit_head: Head,
    properties: BTreeMap<String, u64>,
}

/// A part's value, taken out of the state (the JSON is the entity alone: the key
/// says what it is).
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum PartValue {
    /// [`Part::Counters`].
    Counters(Box<Counters>),
    /// [`Part::User`].
    User(User),
    /// [`Part::System`].
    System(StorageSystem),
    /// [`Part::Inventory`].
    Inventory(BTreeMap<VolumeId, VolumeFacts>),
    /// [`Part::Host`].
    Host(HostConnection),
    /// [`Part::Session`].
    Session(Session),
    /// [`Part::Task`].
    Task(Task),
}

/// Part `part` of `state`, cloned; `None` when the state holds no such entity (its
/// row goes).
pub fn take(state: &State, part: &Part) -> Option<PartValue> {
    Some(match part {
        Part::Counters => PartValue::Counters(Box::new(Counters {
            dual: state.dual.clone(),
            held: state.held.clone(),
            in_flight: state.in_flight.clone(),
            next_action: state.next_action,
            next_user: state.next_user,
            next_task: state.next_task,
            audit_head: state.audit_head,
            properties: state.properties.clone(),
        })),
        Part::User(n) => PartValue::User(state.users.get(n)?.clone()),
        Part::System(n) => PartValue::System(state.systems.get(n)?.clone()),
        Part::Inventory(n) => PartValue::Inventory(state.inventory.get(n)?.clone()),
        Part::Host(n) => PartValue::Host(state.hosts.get(n)?.clone()),
        Part::Session(n) => PartValue::Session(state.sessions.get(n)?.clone()),
        Part::Task(id) => PartValue::Task(state.tasks.get(id)?.clone()),
    })
}

/// Every part `state` holds. Written field by field, so that a field added to
/// [`State`] does not compile here until it has a part.
pub fn all_parts(state: &State) -> BTreeSet<Part> {
    let State {
        users,
        systems,
        inventory,
        hosts,
        sessions,
        tasks,
        // In the counters:
        dual: _,
        held: _,
        in_flight: _,
        next_action: _,
        next_user: _,
        next_task: _,
        audit_head: _,
        properties: _,
    } = state;
    let mut parts = BTreeSet::from([Part::Counters]);
    parts.extend(users.keys().cloned().map(Part::User));
    parts.extend(systems.keys().cloned().map(Part::System));
    parts.extend(inventory.keys().cloned().map(Part::Inventory));
    parts.extend(hosts.keys().cloned().map(Part::Host));
    parts.extend(sessions.keys().cloned().map(Part::Session));
    parts.extend(tasks.keys().copied().map(Part::Task));
    parts
}

/// What a snapshot writes, taken from the state on the engine's thread (cloned
/// parts only) and sealed on the sealer's.
#[derive(Debug, Clone)]
pub struct SnapshotDelta {
    /// Every row is replaced: rows not in `parts` go.
    pub full: bool,
    /// Each part with its value, or `None`: its row goes.
    pub parts: Vec<(Part, Option<PartValue>)>,
}

impl SnapshotDelta {
    /// The parts `dirty` names (and the counters), as `state` holds them.
    pub fn of(state: &State, dirty: &BTreeSet<Part>) -> SnapshotDelta {
        let counters = std::iter::once(&Part::Counters);
        SnapshotDelta {
            full: false,
            parts: counters
                .chain(dirty.iter().filter(|p| **p != Part::Counters))
                .map(|p| (p.clone(), take(state, p)))
                .collect(),
        }
    }

    /// All of `state`, replacing whatever the store held.
    pub fn full(state: &State) -> SnapshotDelta {
        SnapshotDelta {
            full: true,
            ..SnapshotDelta::of(state, &all_parts(state))
        }
    }

    /// Sealed for the store (store.md §1.1), part by part.
    pub fn seal(&self) -> SealedDelta {
        SealedDelta {
            full: self.full,
            parts: self
                .parts
                .iter()
                .map(|(part, value)| (part.key(), value.as_ref().map(super::seal_value)))
                .collect(),
        }
    }
}

/// A row's key: the part's kind code and name ([`Part::key`]).
pub type PartKey = (u8, String);

/// A [`SnapshotDelta`] sealed: each row's key and sealed value (`None`: the row goes).
#[derive(Debug, Clone, Default)]
pub struct SealedDelta {
    /// Every row is replaced.
    pub full: bool,
    /// The rows.
    pub parts: Vec<(PartKey, Option<Vec<u8>>)>,
}

impl SealedDelta {
    /// The bytes it writes.
    pub fn bytes(&self) -> u64 {
        self.parts
            .iter()
            .map(|((_, name), v)| (name.len() + v.as_ref().map_or(0, Vec::len)) as u64)
            .sum()
    }
}

/// A snapshot's rows put back together into the state; the error names the row
/// that is damaged, or says that the counters are missing.
pub fn assemble<'a>(
    rows: impl IntoIterator<Item = ((u8, &'a str), &'a [u8])>,
) -> Result<State, String> {
    use super::unseal_value;
    let mut counters: Option<Counters> = None;
    let mut state = State::new(0);
    for ((kind, name), sealed) in rows {
        let part = Part::from_key(kind, name)?;
        let why = |e: String| format!("snapshot part ({kind}, {name:?}): {e}");
        match part {
            Part::Counters => counters = Some(unseal_value(sealed).map_err(why)?),
            Part::User(n) => {
                state.users.insert(n, unseal_value(sealed).map_err(why)?);
            }
            Part::System(n) => {
                state.systems.insert(n, unseal_value(sealed).map_err(why)?);
            }
            Part::Inventory(n) => {
                state
                    .inventory
                    .insert(n, unseal_value(sealed).map_err(why)?);
            }
            Part::Host(n) => {
                state.hosts.insert(n, unseal_value(sealed).map_err(why)?);
            }
            Part::Session(n) => {
                state.sessions.insert(n, unseal_value(sealed).map_err(why)?);
            }
            Part::Task(id) => {
                state.tasks.insert(id, unseal_value(sealed).map_err(why)?);
            }
        }
    }
    let Counters {
        dual,
        held,
        in_flight,
        next_action,
        next_user,
        next_task,
        audit_head,
        properties,
    } = counters.ok_or("the snapshot has no counters part (0, \"\")")?;
    state.dual = dual;
    state.held = held;
    state.in_flight = in_flight;
    state.next_action = next_action;
    state.next_user = next_user;
    state.next_task = next_task;
    state.audit_head = audit_head;
    state.properties = properties;
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_names_its_part_again() {
        for part in [
            Part::Counters,
            Part::User("ADMIN".into()),
            Part::System("IBM.2107-75ABC01".into()),
            Part::Inventory("IBM.2107-75ABC01".into()),
            Part::Host("SYSA".into()),
            Part::Session("a/b\0c".into()),
            Part::Task(u64::MAX),
        ] {
            let (kind, name) = part.key();
            assert_eq!(Part::from_key(kind, &name), Ok(part));
        }
        assert!(Part::from_key(0, "x").is_err());
        assert!(Part::from_key(6, "seven").is_err());
        assert!(Part::from_key(7, "").is_err());
    }

    #[test]
    fn a_state_without_counters_is_refused() {
        let err = assemble(std::iter::empty()).unwrap_err();
        assert!(err.contains("counters"), "{err}");
    }
}
