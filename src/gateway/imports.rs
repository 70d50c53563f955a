//! Copy sets sent in parts (`protocol-specs/csm.md` §3.6): a whole-box session's
//! 32,640 copy sets do not fit in one 64 KiB frame, so a client sends them as parts
//! of one import; when the last part is in, they are added by one `Add Copy Sets`
//! command, checked in one pass and read from the box once, all or nothing.
//!
//! Parts wait in memory, not in the store: an import cut off by a restart is sent
//! again. Everything a client controls is bounded: parts per import, copy sets per
//! import, imports per user and in all, and idle time.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use crate::policy::engine::MAX_COPY_SETS;
use crate::policy::session::CopySet;

/// The most parts in one import.
pub const MAX_PARTS: u32 = 1024;
/// The most imports one user has open.
pub const MAX_IMPORTS_PER_USER: usize = 4;
/// The most imports open in all.
pub const MAX_IMPORTS: usize = 64;
/// The longest import name.
pub const MAX_IMPORT_NAME: usize = 64;
/// An import with no part for this long is dropped.
pub const IDLE_MS: u64 = 10 * 60 * 1000;

/// One part, as a client sent it.
#[derive(Debug, Clone)]
pub struct Part {
    /// The session.
    pub session: String,
    /// The client's name for the import.
    pub import: String,
    /// This part's number, from 1.
    pub part: u32,
    /// How many parts there are.
    pub parts: u32,
    /// The copy sets in it.
    pub copy_sets: Vec<CopySet>,
}

/// Where an import stands after a part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Staged {
    /// Parts are missing.
    Waiting {
        /// Parts received.
        received: u32,
        /// Parts in all.
        parts: u32,
        /// Copy sets received.
        copy_sets: usize,
    },
    /// Every part is in: the copy sets, in part order.
    Complete(Vec<CopySet>),
}

#[derive(Debug)]
struct Staging {
    parts: u32,
    received: BTreeMap<u32, Vec<CopySet>>,
    copy_sets: usize,
    touched_ms: u64,
}

/// The imports under way, by (user, session, import name).
#[derive(Debug, Default)]
pub struct Imports {
    open: Mutex<HashMap<(String, String, String), Staging>>,
}

impl Imports {
    /// Takes one part for `user` at `now_ms`. A part sent again replaces the one
    /// received (a client retrying after a lost reply loses nothing).
    pub fn stage(&self, user: &str, part: Part, now_ms: u64) -> Result<Staged, String> {
        if part.import.is_empty() || part.import.chars().count() > MAX_IMPORT_NAME {
            return Err(format!(
                "import is a name of 1 to {MAX_IMPORT_NAME} characters"
            ));
        }
        if part.parts == 0 || part.parts > MAX_PARTS || part.part == 0 || part.part > part.parts {
            return Err(format!(
                "part {} of {}: parts run from 1 to at most {MAX_PARTS}",
                part.part, part.parts
            ));
        }
        let mut open = self
            .open
            .lock()
            .map_err(|_| "the import table is unavailable".to_owned())?;
        open.retain(|_, s| now_ms.saturating_sub(s.touched_ms) < IDLE_MS);
        let key = (user.to_owned(), part.session.clone(), part.import.clone());
        if !open.contains_key(&key) {
            let mine = open.keys().filter(|k| k.0 == user).count();
            if mine >= MAX_IMPORTS_PER_USER || open.len() >= MAX_IMPORTS {
                return Err(format!(
                    "too many imports open (at most {MAX_IMPORTS_PER_USER} per user, {MAX_IMPORTS} in all); finish one or wait {} minutes",
                    IDLE_MS / 60_000
                ));
            }
        }
        let staging = open.entry(key.clone()).or_insert_with(|| Staging {
            parts: part.parts,
            received: BTreeMap::new(),
            copy_sets: 0,
            touched_ms: now_ms,
        });
        if staging.parts != part.parts {
            return Err(format!(
                "import {} has {} parts, not {}",
                part.import, staging.parts, part.parts
            ));
        }
        let replaced = staging.received.get(&part.part).map_or(0, Vec::len);
        let total = staging.copy_sets - replaced + part.copy_sets.len();
        if total > MAX_COPY_SETS {
            open.remove(&key);
            return Err(format!(
                "import {} holds more than {MAX_COPY_SETS} copy sets, the most a session holds; it was dropped",
                part.import
            ));
        }
        staging.copy_sets = total;
        staging.touched_ms = now_ms;
        staging.received.insert(part.part, part.copy_sets);
        if staging.received.len() < staging.parts as usize {
            return Ok(Staged::Waiting {
                received: staging.received.len() as u32,
                parts: staging.parts,
                copy_sets: staging.copy_sets,
            });
        }
        let done = open.remove(&key).map(|s| s.received).unwrap_or_default();
        Ok(Staged::Complete(done.into_values().flatten().collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::inventory::VolumeRef;

    fn sets(from: u16, n: u16) -> Vec<CopySet> {
        (from..from + n)
            .map(|i| CopySet {
                h1: VolumeRef::parse(&format!("DS8000:2107.75ABC01:VOL:{i:04X}")).unwrap(),
                partner: VolumeRef::parse(&format!("DS8000:2107.75ABC01:VOL:{:04X}", 0x8000 + i)),
            })
            .collect()
    }

    fn part(import: &str, part: u32, parts: u32, copy_sets: Vec<CopySet>) -> Part {
        Part {
            session: "S".into(),
            import: import.into(),
            part,
            parts,
            copy_sets,
        }
    }

    #[test]
    fn parts_in_any_order_complete_in_part_order_and_a_retry_replaces() {
        let imports = Imports::default();
        let waiting = imports.stage("a", part("x", 2, 3, sets(10, 5)), 0).unwrap();
        assert_eq!(
            waiting,
            Staged::Waiting {
                received: 1,
                parts: 3,
                copy_sets: 5
            }
        );
        imports.stage("a", part("x", 1, 3, sets(0, 9)), 1).unwrap();
        imports.stage("a", part("x", 1, 3, sets(0, 10)), 2).unwrap();
        let Staged::Complete(all) = imports.stage("a", part("x", 3, 3, sets(15, 1)), 3).unwrap()
        else {
            panic!("not complete")
        };
        assert_eq!(all, sets(0, 16));
    }

    #[test]
    fn bounds_hold_and_idle_imports_are_dropped() {
        let imports = Imports::default();
        assert!(imports.stage("a", part("x", 0, 3, sets(0, 1)), 0).is_err());
        let over = MAX_PARTS + 1;
        assert!(
            imports
                .stage("a", part("x", over, over, sets(0, 1)), 0)
                .is_err()
        );
        imports
            .stage("a", part("x", MAX_PARTS, MAX_PARTS, sets(0, 1)), 0)
            .unwrap();
        let long = "n".repeat(MAX_IMPORT_NAME + 1);
        assert!(
            imports
                .stage("a", part(&long, 1, 3, sets(0, 1)), 0)
                .is_err()
        );
        imports
            .stage("a", part(&long[1..], 1, 3, sets(0, 1)), 0)
            .unwrap();
        let imports = Imports::default();
        assert!(imports.stage("a", part("x", 4, 3, sets(0, 1)), 0).is_err());
        assert!(imports.stage("a", part("", 1, 3, sets(0, 1)), 0).is_err());
        imports.stage("a", part("x", 1, 3, sets(0, 1)), 0).unwrap();
        assert!(imports.stage("a", part("x", 2, 4, sets(1, 1)), 0).is_err());
        for i in 1..MAX_IMPORTS_PER_USER {
            imports
                .stage("a", part(&format!("y{i}"), 1, 2, sets(0, 1)), 0)
                .unwrap();
        }
        let err = imports
            .stage("a", part("z", 1, 2, sets(0, 1)), 0)
            .unwrap_err();
        assert!(err.contains("too many imports"), "{err}");
        imports.stage("b", part("z", 1, 2, sets(0, 1)), 0).unwrap();
        // At most MAX_IMPORTS in all, whoever holds them.
        for i in 0..MAX_IMPORTS - MAX_IMPORTS_PER_USER - 1 {
            imports
                .stage(&format!("u{i}"), part("z", 1, 2, sets(0, 1)), 0)
                .unwrap();
        }
        let err = imports
            .stage("last", part("z", 1, 2, sets(0, 1)), 0)
            .unwrap_err();
        assert!(err.contains("too many imports"), "{err}");
        // Past the idle time the user's imports are gone and a new one is taken.
        imports
            .stage("a", part("z", 1, 2, sets(0, 1)), IDLE_MS)
            .unwrap();
        let too_many = MAX_COPY_SETS as u16 / 2 + 1;
        imports
            .stage("c", part("big", 1, 3, sets(0, too_many)), 0)
            .unwrap();
        let err = imports
            .stage("c", part("big", 2, 3, sets(0, too_many)), 0)
            .unwrap_err();
        assert!(err.contains("dropped"), "{err}");
    }
}
