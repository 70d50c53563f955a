//! What a change to a session writes (`protocol-specs/policy.md` §8.1): the fields
//! that changed, not the session. A session is written whole only when it is created
//! and in snapshots, so a change's record does not grow with the session's copy sets
//! or backups, nor with the number of sessions.
//!
//! The engine still works on whole values (it changes a copy of a session and commits
//! it); [`changes_between`] turns that into changes at commit time, and
//! [`apply_changes`] replays them. `apply_changes(old, changes_between(old, new))`
//! equals `new` for every pair: the field-by-field destructuring below makes a new
//! field a compile error until it is carried.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::policy::inventory::VolumeRef;
use crate::policy::retention::Backup;
use crate::policy::session::{
    CopySet, CopySets, MirrorState, Properties, Runtime, Session, SessionState, SessionStatus,
    SgcRuntime,
};
use crate::policy::storage::ActionId;

/// One change to a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SessionChange {
    /// The description.
    Description(String),
    /// The properties (a few dozen bytes, whatever the session's size).
    Properties(Properties),
    /// The state.
    State(SessionState),
    /// The status.
    Status(SessionStatus),
    /// The action under way.
    Busy(Option<ActionId>),
    /// FC: when the last Flash was taken.
    LastFlash(Option<u64>),
    /// FC: whether background copy runs.
    Copying(bool),
    /// FC: whether relationships exist on the box.
    Relationships(bool),
    /// SGC: the backup recovered to R1.
    Recovered(Option<u64>),
    /// SGC: the newest backup when copy sets were last added.
    BackupsBeforeCopySets(u64),
    /// The last error.
    LastError(Option<String>),
    /// When it was created.
    Created(u64),
    /// MM, HS: where the pairs and production are, HyperSwap's state.
    Mirror(MirrorState),
    /// Copy sets appended, in order.
    CopySetsAdded(Vec<CopySet>),
    /// Copy sets removed, by H1 (unique in a session); the others keep their order.
    CopySetsRemoved(Vec<VolumeRef>),
    /// The copy sets replaced whole (any other change to the list).
    CopySets(Vec<CopySet>),
    /// Backups removed (expired, rolled off, dropped), by id.
    BackupsRemoved(Vec<u64>),
    /// Backups appended (taken or adopted), oldest first.
    BackupsAdded(Vec<Backup>),
    /// The backups replaced whole (any other change to the list).
    Backups(Vec<Backup>),
}

/// The changes that turn `old` into `new` (none when they are equal). Both are the
/// same session: `name` is not compared.
pub fn changes_between(old: &Session, new: &Session) -> Vec<SessionChange> {
    use SessionChange as C;
    let Session {
        name: _,
        description,
        copy_sets,
        properties,
        state,
        status,
        busy,
        copying,
        relationships,
        last_error,
        created_ms,
        runtime,
    } = new;
    let mut out = Vec::new();
    let mut scalar = |changed: bool, change: fn(&Session) -> SessionChange| {
        if changed {
            out.push(change(new));
        }
    };
    scalar(old.description != *description, |s| {
        C::Description(s.description.clone())
    });
    scalar(old.properties != *properties, |s| {
        C::Properties(s.properties.clone())
    });
    scalar(old.state != *state, |s| C::State(s.state));
    scalar(old.status != *status, |s| C::Status(s.status));
    scalar(old.busy != *busy, |s| C::Busy(s.busy));
    // The type's own fields: compared with the same type's (a session's type does
    // not change; if it did, its new fields are written whole).
    let none = SgcRuntime::default();
    let (old_fc, old_sgc, old_mirror) = match &old.runtime {
        Runtime::Fc(fc) => (Some(fc.last_flash_ms), None, None),
        Runtime::Sgc(sgc) => (None, Some(sgc), None),
        Runtime::Mirror(m) => (None, None, Some(*m)),
    };
    let same_type = std::mem::discriminant(&old.runtime) == std::mem::discriminant(runtime);
    if let Runtime::Fc(fc) = runtime
        && (!same_type || old_fc != Some(fc.last_flash_ms))
    {
        out.push(C::LastFlash(fc.last_flash_ms));
    }
    if old.copying != *copying {
        out.push(C::Copying(*copying));
    }
    if old.relationships != *relationships {
        out.push(C::Relationships(*relationships));
    }
    let sgc = match runtime {
        Runtime::Sgc(sgc) => Some((sgc, old_sgc.filter(|_| same_type).unwrap_or(&none))),
        _ => None,
    };
    if let Some((sgc, was)) = sgc {
        if sgc.recovered != was.recovered {
            out.push(C::Recovered(sgc.recovered));
        }
        if sgc.backups_before_copy_sets != was.backups_before_copy_sets {
            out.push(C::BackupsBeforeCopySets(sgc.backups_before_copy_sets));
        }
    }
    if old.last_error != *last_error {
        out.push(C::LastError(last_error.clone()));
    }
    if old.created_ms != *created_ms {
        out.push(C::Created(*created_ms));
    }
    if let Runtime::Mirror(m) = runtime
        && (!same_type || old_mirror != Some(*m))
    {
        out.push(C::Mirror(*m));
    }
    if !copy_sets.shares(&old.copy_sets) && *copy_sets != old.copy_sets {
        out.push(copy_set_change(&old.copy_sets, copy_sets));
    }
    if let Some((sgc, was)) = sgc
        && sgc.backups != was.backups
    {
        out.extend(backup_changes(&was.backups, &sgc.backups));
    }
    out
}

/// Applies `changes` to `s` (policy.md §8.1). A change of another type's field
/// (never written) changes nothing; properties of another type make the session
/// that type, its own fields at their defaults.
pub fn apply_changes(s: &mut Session, changes: &[SessionChange]) {
    use SessionChange as C;
    for change in changes {
        match change {
            C::Description(v) => s.description.clone_from(v),
            C::Properties(v) => {
                if v.kind() != s.kind() {
                    s.runtime = Runtime::new(v.kind());
                }
                s.properties = v.clone();
            }
            C::State(v) => s.state = *v,
            C::Status(v) => s.status = *v,
            C::Busy(v) => s.busy = *v,
            C::LastFlash(v) => {
                if let Some(fc) = s.fc_mut() {
                    fc.last_flash_ms = *v;
                }
            }
            C::Copying(v) => s.copying = *v,
            C::Relationships(v) => s.relationships = *v,
            C::Recovered(v) => {
                if let Some(sgc) = s.sgc_mut() {
                    sgc.recovered = *v;
                }
            }
            C::BackupsBeforeCopySets(v) => {
                if let Some(sgc) = s.sgc_mut() {
                    sgc.backups_before_copy_sets = *v;
                }
            }
            C::LastError(v) => s.last_error.clone_from(v),
            C::Created(v) => s.created_ms = *v,
            C::Mirror(v) => {
                if let Some(m) = s.mirror_mut() {
                    *m = *v;
                }
            }
            C::CopySetsAdded(added) => s.copy_sets.make_mut().extend(added.iter().cloned()),
            C::CopySetsRemoved(h1) => {
                let leaving: HashSet<&VolumeRef> = h1.iter().collect();
                s.copy_sets.make_mut().retain(|c| !leaving.contains(&c.h1));
            }
            C::CopySets(all) => s.copy_sets = CopySets::from(all.clone()),
            C::BackupsRemoved(ids) => {
                if let Some(sgc) = s.sgc_mut() {
                    let leaving: HashSet<u64> = ids.iter().copied().collect();
                    sgc.backups.retain(|b| !leaving.contains(&b.id));
                }
            }
            C::BackupsAdded(added) => {
                if let Some(sgc) = s.sgc_mut() {
                    sgc.backups.extend(added.iter().copied());
                }
            }
            C::Backups(all) => {
                if let Some(sgc) = s.sgc_mut() {
                    sgc.backups.clone_from(all);
                }
            }
        }
    }
}

/// Appended, removed by H1, or (neither) the whole list.
fn copy_set_change(old: &[CopySet], new: &[CopySet]) -> SessionChange {
    if new.len() > old.len() && new[..old.len()] == *old {
        return SessionChange::CopySetsAdded(new[old.len()..].to_vec());
    }
    if new.len() < old.len() {
        // `new` must be `old` with some copy sets left out, in the same order.
        let mut kept = new.iter().peekable();
        let mut removed = Vec::new();
        for c in old {
            if kept.peek() == Some(&c) {
                kept.next();
            } else {
                removed.push(c.h1.clone());
            }
        }
        let unique_h1 = old.iter().map(|c| &c.h1).collect::<HashSet<_>>().len() == old.len();
        if kept.next().is_none() && unique_h1 {
            return SessionChange::CopySetsRemoved(removed);
        }
    }
    SessionChange::CopySets(new.to_vec())
}

/// Backups removed by id then appended, or (when that does not rebuild `new`) the
/// whole list. Backup lists are short (the box keeps at most 500 per volume).
fn backup_changes(old: &[Backup], new: &[Backup]) -> Vec<SessionChange> {
    let staying: HashSet<u64> = new.iter().map(|b| b.id).collect();
    let removed: Vec<u64> = old
        .iter()
        .map(|b| b.id)
        .filter(|id| !staying.contains(id))
        .collect();
    let kept: Vec<Backup> = old
        .iter()
        .filter(|b| staying.contains(&b.id))
        .copied()
        .collect();
    let unique = staying.len() == new.len()
        && old.iter().map(|b| b.id).collect::<HashSet<_>>().len() == old.len();
    if unique && new.len() >= kept.len() && new[..kept.len()] == *kept {
        let mut out = Vec::new();
        if !removed.is_empty() {
            out.push(SessionChange::BackupsRemoved(removed));
        }
        if new.len() > kept.len() {
            out.push(SessionChange::BackupsAdded(new[kept.len()..].to_vec()));
        }
        return out;
    }
    vec![SessionChange::Backups(new.to_vec())]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ds8k::ids::VolumeId;
    use crate::policy::SessionType;
    use proptest::prelude::*;

    fn set(i: u16) -> CopySet {
        let v = |n: u16| VolumeRef {
            serial: "75FA120".into(),
            volume: VolumeId(n),
        };
        CopySet {
            h1: v(i),
            partner: Some(v(0x8000 + i)),
        }
    }

    fn session(sets: &[u16], backups: &[u64]) -> Session {
        let mut s = Session::new("S".into(), SessionType::Sgc, String::new(), 7);
        s.copy_sets = sets.iter().map(|&i| set(i)).collect::<Vec<_>>().into();
        if let Some(sgc) = s.sgc_mut() {
            sgc.backups = backups
                .iter()
                .map(|&id| Backup {
                    id,
                    time_ms: id * 10,
                })
                .collect();
        }
        s
    }

    fn round_trip(old: &Session, new: &Session) -> Vec<SessionChange> {
        let changes = changes_between(old, new);
        let mut rebuilt = old.clone();
        apply_changes(&mut rebuilt, &changes);
        assert_eq!(rebuilt, *new, "changes {changes:?}");
        changes
    }

    #[test]
    fn a_small_change_to_a_big_session_names_only_itself() {
        let old = session(
            &(0..5000).collect::<Vec<_>>(),
            &(1..400).collect::<Vec<_>>(),
        );
        let mut new = old.clone();
        new.description = "nightly".into();
        new.state = SessionState::Protected;
        let changes = round_trip(&old, &new);
        assert_eq!(
            changes,
            vec![
                SessionChange::Description("nightly".into()),
                SessionChange::State(SessionState::Protected)
            ]
        );
        assert!(changes_between(&old, &old.clone()).is_empty());
    }

    #[test]
    fn a_backup_taken_and_the_oldest_expired_are_two_small_changes() {
        let old = session(&[1, 2], &[1, 2, 3]);
        let new = session(&[1, 2], &[3, 4]);
        assert_eq!(
            round_trip(&old, &new),
            vec![
                SessionChange::BackupsRemoved(vec![1, 2]),
                SessionChange::BackupsAdded(vec![Backup { id: 4, time_ms: 40 }])
            ]
        );
    }

    proptest! {
        /// Any two lists of copy sets and backups: the changes rebuild the new one,
        /// and appending or removing is written as such.
        #[test]
        fn changes_rebuild_the_new_session(
            old_sets in proptest::collection::btree_set(0u16..64, 0..20),
            new_sets in proptest::collection::vec(0u16..64, 0..20),
            old_backups in proptest::collection::btree_set(1u64..40, 0..10),
            new_backups in proptest::collection::vec(1u64..40, 0..10),
            shuffle in any::<bool>(),
        ) {
            let old_sets: Vec<u16> = old_sets.into_iter().collect();
            let old_backups: Vec<u64> = old_backups.into_iter().collect();
            let mut new_sets = new_sets;
            if !shuffle {
                new_sets = old_sets.iter().copied().filter(|i| new_sets.contains(i)).collect();
            }
            let old = session(&old_sets, &old_backups);
            let new = session(&new_sets, &new_backups);
            let changes = round_trip(&old, &new);
            if !shuffle && new_sets.len() < old_sets.len() {
                prop_assert!(changes.iter().any(|c| matches!(c, SessionChange::CopySetsRemoved(_))));
                prop_assert!(!changes.iter().any(|c| matches!(c, SessionChange::CopySets(_))));
            }
        }
    }
}
