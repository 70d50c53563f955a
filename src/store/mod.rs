//! The durable store (`protocol-specs/store.md`): the policy engine's journal of
//! [`Record`]s in an embedded ACID database (redb, used here only). A change is
//! acknowledged only after the transaction that holds it is durable on disk.
//!
//! The journal is also the stream a standby follows: every record has a sequence
//! number and the epoch (writer's term) it was written in, [`StoreReader::since`]
//! hands out what a reader is missing, and a snapshot of the whole [`State`] lets a
//! restart (or a new standby) start from it instead of the first record. The
//! snapshot is kept in parts, one per entity ([`parts`]), and each snapshot rewrites
//! only the parts changed since the last.
//!
//! Layout (schema version 4, store.md §1): tables `meta`, `epochs`,
//! `snapshot_parts`, `audit`, and the journal in segments of 8,192 records
//! (`journal.<n>`), so that compaction drops whole tables instead of deleting
//! records one by one. A sealed value is the first 8 bytes of SHA-256 over its
//! JSON encoding, then the JSON: a value the disk altered is found and named, never
//! decoded into something else.

mod group;
pub mod parts;
pub mod sealing;

use std::path::Path;
use std::sync::Arc;

use redb::{
    Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition, TableHandle,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

pub use group::{CommitHandle, Committed, Committer, PendingCommit, PendingSnapshot};
pub use parts::{Part, SealedDelta, SnapshotDelta};

use crate::policy::audit::AuditEntry;
use crate::policy::engine::{Record, State};

/// The schema this build writes.
pub const SCHEMA_VERSION: u64 = 4;

const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// Schema version 1's one journal table (migrated into segments).
const LEGACY_JOURNAL: TableDefinition<u64, &[u8]> = TableDefinition::new("journal");
/// Journal records per segment table, for a new store (kept in `meta` as
/// `segment_records`).
pub const SEGMENT_RECORDS: u64 = 8192;
/// Epoch → the sequence number of its first record.
const EPOCHS: TableDefinition<u64, u64> = TableDefinition::new("epochs");
/// Schema versions 2 and 3's snapshot: sequence number → the whole [`State`]
/// sealed (migrated into parts).
const LEGACY_SNAPSHOT: TableDefinition<u64, &[u8]> = TableDefinition::new("snapshot");
/// The newest snapshot in parts (store.md §6.2): (kind, name) → the part sealed;
/// `meta.snapshot_seq` is the record it is taken after.
const SNAPSHOT_PARTS: TableDefinition<(u8, &str), &[u8]> = TableDefinition::new("snapshot_parts");
/// Every `Audit` record, also written here (by its sequence number) when it is
/// appended, so that the trail outlives the journal's compaction.
const AUDIT: TableDefinition<u64, &[u8]> = TableDefinition::new("audit");

/// The table name of segment `k`.
fn segment_name(k: u64) -> String {
    format!("journal.{k:012}")
}

fn segment(name: &str) -> TableDefinition<'_, u64, &'static [u8]> {
    TableDefinition::new(name)
}

/// How sealed `Audit` records start (serde's external tagging), after the checksum.
const AUDIT_PREFIX: &[u8] = b"{\"Audit\":";

/// Why the store cannot do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database layer failed (I/O, or a file it cannot read).
    #[error("store {path}: {source}")]
    Database {
        /// The file.
        path: String,
        /// What redb said.
        source: Box<redb::Error>,
    },
    /// The file is not readable as a zgate store: it names what is wrong.
    #[error("store {path} is corrupt: {what}")]
    Corrupt {
        /// The file.
        path: String,
        /// What is wrong, and where.
        what: String,
    },
    /// Written by a newer zgate.
    #[error("store {path} has schema version {found}; this zgate reads up to {SCHEMA_VERSION}")]
    TooNew {
        /// The file.
        path: String,
        /// Its version.
        found: u64,
    },
    /// A reader asked for records the journal no longer holds: it must start again
    /// from a snapshot (store.md §6).
    #[error(
        "the journal no longer holds the records after {after} (it starts at {first}); start from a snapshot"
    )]
    Compacted {
        /// What the reader holds.
        after: u64,
        /// The first record the journal holds.
        first: u64,
    },
    /// A replicated record does not follow the journal (ha.md §5).
    #[error("replicated record {got} does not follow the journal (expected {expected})")]
    OutOfOrder {
        /// The next sequence number the journal takes.
        expected: u64,
        /// What came.
        got: u64,
    },
    /// A replicated record comes from an older epoch than the journal's (ha.md §7).
    #[error("replicated record {seq} is of epoch {epoch}, older than the journal's {current}")]
    StaleEpoch {
        /// The record.
        seq: u64,
        /// Its epoch.
        epoch: u64,
        /// The journal's.
        current: u64,
    },
    /// A replicated record or copy is damaged.
    #[error("replicated record {seq} refused: {why}")]
    Refused {
        /// The record (or the copy's sequence number).
        seq: u64,
        /// What is wrong.
        why: String,
    },
    /// The committer stopped (after an earlier error).
    #[error("the store's committer has stopped")]
    Stopped,
}

/// Test-only helpers that reach under the store's own API (feature `testkit`).
#[cfg(any(test, feature = "testkit"))]
pub mod testing {
    use std::path::Path;

    use redb::Database;

    use super::{LEGACY_JOURNAL, META};
    use crate::policy::engine::Record;

    /// Writes `version` as the file's schema version.
    pub fn set_schema_version(path: &Path, version: u64) -> Result<(), redb::Error> {
        let db = Database::open(path)?;
        let txn = db.begin_write()?;
        txn.open_table(META)?.insert("schema_version", version)?;
        txn.commit()?;
        Ok(())
    }

    /// Writes a new store in schema version 1's layout (`meta` and `journal` only),
    /// as zgate up to that version wrote it, holding `records`.
    pub fn write_version_1(path: &Path, records: &[Record]) -> Result<(), redb::Error> {
        let db = Database::create(path)?;
        let txn = db.begin_write()?;
        {
            let mut journal = txn.open_table(LEGACY_JOURNAL)?;
            for (i, record) in records.iter().enumerate() {
                journal.insert(i as u64 + 1, super::seal(record).as_slice())?;
            }
            let mut meta = txn.open_table(META)?;
            meta.insert("schema_version", 1)?;
            meta.insert("last_seq", records.len() as u64)?;
        }
        txn.commit()?;
        Ok(())
    }
}

/// One journal record with its place in the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamped {
    /// Its sequence number (from 1, no gaps).
    pub seq: u64,
    /// The epoch it was written in.
    pub epoch: u64,
    /// The record.
    pub record: Record,
}

/// What a restart starts from: the newest snapshot, and the records after it.
#[derive(Debug, Clone, Default)]
pub struct Recovered {
    /// The state at a sequence number, if a snapshot was taken.
    pub snapshot: Option<(u64, State)>,
    /// The records after the snapshot (all of them without one), in order.
    pub tail: Vec<Record>,
}

/// The journal, open, for its one writer.
pub struct Store {
    reader: StoreReader,
    last_seq: u64,
    epoch: u64,
    migrated_from: Option<u64>,
}

/// A reader's view of the store; any number of them read while the writer writes.
#[derive(Clone)]
pub struct StoreReader {
    db: Arc<Database>,
    path: Arc<str>,
    /// Records per journal segment.
    segment: u64,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.reader.path)
            .field("last_seq", &self.last_seq)
            .field("epoch", &self.epoch)
            .finish()
    }
}

impl std::fmt::Debug for StoreReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreReader")
            .field("path", &self.path)
            .finish()
    }
}

/// Seals one record: checksum, then JSON.
pub fn seal(record: &Record) -> Vec<u8> {
    seal_value(record)
}

fn seal_value<T: Serialize>(value: &T) -> Vec<u8> {
    // Encoding a value built from our own types cannot fail (maps are keyed by
    // strings or integers, no I/O); an empty body would fail the check on load anyway.
    let json = serde_json::to_vec(value).unwrap_or_default();
    let digest = Sha256::digest(&json);
    let mut out = Vec::with_capacity(8 + json.len());
    out.extend_from_slice(&digest[..8]);
    out.extend_from_slice(&json);
    out
}

/// Opens a sealed record; the error says what is wrong.
pub fn unseal(bytes: &[u8]) -> Result<Record, String> {
    unseal_value(bytes)
}

fn unseal_value<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    if bytes.len() < 8 {
        return Err(format!(
            "{} bytes is shorter than the checksum",
            bytes.len()
        ));
    }
    let (sum, json) = bytes.split_at(8);
    if Sha256::digest(json)[..8] != *sum {
        return Err("checksum mismatch (the record was altered)".into());
    }
    serde_json::from_slice(json).map_err(|e| format!("undecodable record: {e}"))
}

/// The epoch of record `seq`: the one whose first record is the greatest at or
/// before it (store.md §6.1).
fn epoch_of(epochs: &[(u64, u64)], seq: u64) -> u64 {
    epochs
        .iter()
        .take_while(|(_, from)| *from <= seq)
        .last()
        .map_or(0, |(epoch, _)| *epoch)
}

/// Checks a sealed value's checksum (store.md §1) without decoding it.
pub fn check_sealed(bytes: &[u8]) -> Result<(), String> {
    if bytes.len() < 8 {
        return Err(format!(
            "{} bytes is shorter than the checksum",
            bytes.len()
        ));
    }
    let (sum, json) = bytes.split_at(8);
    if Sha256::digest(json)[..8] != *sum {
        return Err("checksum mismatch (the record was altered)".into());
    }
    Ok(())
}

/// Opens a sealed [`State`] (a snapshot, or a full copy's).
pub fn unseal_state(bytes: &[u8]) -> Result<State, String> {
    unseal_value(bytes)
}

/// Seals a [`State`] as a snapshot is stored.
pub fn seal_state(state: &State) -> Vec<u8> {
    seal_value(state)
}

fn is_audit(sealed: &[u8]) -> bool {
    sealed
        .get(8..)
        .is_some_and(|json| json.starts_with(AUDIT_PREFIX))
}

impl StoreReader {
    /// The segment that holds record `seq` (from 1).
    fn segment_of(&self, seq: u64) -> u64 {
        seq.saturating_sub(1) / self.segment
    }

    fn db_err(&self, e: impl Into<redb::Error>) -> StoreError {
        StoreError::Database {
            path: self.path.to_string(),
            source: Box::new(e.into()),
        }
    }

    fn corrupt(&self, what: String) -> StoreError {
        StoreError::Corrupt {
            path: self.path.to_string(),
            what,
        }
    }

    /// Runs a read, turning a panic of the database layer on a damaged file into
    /// the same clear error.
    fn guarded<T>(&self, f: impl FnOnce() -> Result<T, StoreError>) -> Result<T, StoreError> {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|_| {
            Err(self.corrupt("the database layer failed reading the journal".into()))
        })
    }

    fn meta(&self, txn: &redb::ReadTransaction, key: &str) -> Result<u64, StoreError> {
        let meta = txn.open_table(META).map_err(|e| self.db_err(e))?;
        let value = meta.get(key).map_err(|e| self.db_err(e))?;
        value
            .map(|v| v.value())
            .ok_or_else(|| self.corrupt(format!("meta has no {key}")))
    }

    /// The records after `after`, at most `limit` of them, each with its sequence
    /// number and epoch (store.md §6). A reader that holds everything up to `after`
    /// calls this again with the last one it got. [`StoreError::Compacted`] when the
    /// journal no longer holds the record after `after`.
    pub fn since(&self, after: u64, limit: usize) -> Result<Vec<Stamped>, StoreError> {
        self.since_sealed(after, limit, usize::MAX)?
            .into_iter()
            .map(|(seq, epoch, sealed)| {
                let record = unseal(&sealed)
                    .map_err(|why| self.corrupt(format!("journal record {seq}: {why}")))?;
                Ok(Stamped { seq, epoch, record })
            })
            .collect()
    }

    fn read_epochs(&self, txn: &redb::ReadTransaction) -> Result<Vec<(u64, u64)>, StoreError> {
        let table = txn.open_table(EPOCHS).map_err(|e| self.db_err(e))?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(|e| self.db_err(e))? {
            let (k, v) = entry.map_err(|e| self.db_err(e))?;
            out.push((k.value(), v.value()));
        }
        Ok(out)
    }

    /// The epochs table: each epoch with the sequence number of its first record.
    pub fn epochs(&self) -> Result<Vec<(u64, u64)>, StoreError> {
        self.guarded(|| {
            let txn = self.db.begin_read().map_err(|e| self.db_err(e))?;
            self.read_epochs(&txn)
        })
    }

    /// The first record the journal still holds (1 until a compaction).
    pub fn first_seq(&self) -> Result<u64, StoreError> {
        self.guarded(|| {
            let txn = self.db.begin_read().map_err(|e| self.db_err(e))?;
            self.meta(&txn, "first_seq")
        })
    }

    /// The last record's sequence number, as committed now.
    pub fn last_seq(&self) -> Result<u64, StoreError> {
        self.guarded(|| {
            let txn = self.db.begin_read().map_err(|e| self.db_err(e))?;
            self.meta(&txn, "last_seq")
        })
    }

    /// The epoch record `seq` was written in, from the epochs table (kept whole
    /// through compaction); `None` past the journal's end (ha.md §5).
    pub fn epoch_at(&self, seq: u64) -> Result<Option<u64>, StoreError> {
        self.guarded(|| {
            let txn = self.db.begin_read().map_err(|e| self.db_err(e))?;
            if seq > self.meta(&txn, "last_seq")? {
                return Ok(None);
            }
            Ok(Some(epoch_of(&self.read_epochs(&txn)?, seq)))
        })
    }

    /// [`StoreReader::since`] as stored: each record's sealed bytes with its place,
    /// at most `limit` records and, past the first, at most `max_bytes` of them (the
    /// HA stream sends what the active stored, byte for byte; ha.md §5).
    pub fn since_sealed(
        &self,
        after: u64,
        limit: usize,
        max_bytes: usize,
    ) -> Result<Vec<(u64, u64, Vec<u8>)>, StoreError> {
        self.guarded(|| {
            let txn = self.db.begin_read().map_err(|e| self.db_err(e))?;
            let first = self.meta(&txn, "first_seq")?;
            let last = self.meta(&txn, "last_seq")?;
            if after + 1 < first {
                return Err(StoreError::Compacted { after, first });
            }
            let epochs = self.read_epochs(&txn)?;
            let mut out = Vec::new();
            let mut bytes = 0usize;
            let mut expected = after + 1;
            'segments: while expected <= last && out.len() < limit {
                let name = segment_name(self.segment_of(expected));
                let table = match txn.open_table(segment(&name)) {
                    Ok(t) => t,
                    Err(redb::TableError::TableDoesNotExist(_)) => {
                        return Err(self.corrupt(format!(
                            "journal record {expected} is missing (no segment {name})"
                        )));
                    }
                    Err(e) => return Err(self.db_err(e)),
                };
                let end = ((self.segment_of(expected) + 1) * self.segment).min(last);
                for entry in table.range(expected..=end).map_err(|e| self.db_err(e))? {
                    let (k, v) = entry.map_err(|e| self.db_err(e))?;
                    if k.value() != expected {
                        return Err(self.corrupt(format!(
                            "journal record {expected} is missing (found {} in its place)",
                            k.value()
                        )));
                    }
                    let sealed = v.value();
                    // A record that would take the batch past `max_bytes` waits for
                    // the next one (the first is always taken), so a batch of records
                    // stays inside one HA frame (ha.md §3).
                    if !out.is_empty() && bytes + sealed.len() > max_bytes {
                        break 'segments;
                    }
                    bytes += sealed.len();
                    out.push((expected, epoch_of(&epochs, expected), sealed.to_vec()));
                    expected += 1;
                    if out.len() >= limit || bytes >= max_bytes {
                        break 'segments;
                    }
                }
                if expected <= end {
                    return Err(self.corrupt(format!(
                        "journal record {expected} is missing (the store recorded {last})"
                    )));
                }
            }
            Ok(out)
        })
    }

    /// The newest snapshot, its parts put together, with its sequence number.
    pub fn snapshot(&self) -> Result<Option<(u64, State)>, StoreError> {
        self.guarded(|| {
            let txn = self.db.begin_read().map_err(|e| self.db_err(e))?;
            let meta = txn.open_table(META).map_err(|e| self.db_err(e))?;
            let Some(seq) = meta
                .get("snapshot_seq")
                .map_err(|e| self.db_err(e))?
                .map(|v| v.value())
            else {
                return Ok(None);
            };
            let table = txn.open_table(SNAPSHOT_PARTS).map_err(|e| self.db_err(e))?;
            let mut rows = Vec::new();
            for entry in table.iter().map_err(|e| self.db_err(e))? {
                let (k, v) = entry.map_err(|e| self.db_err(e))?;
                let (kind, name) = k.value();
                rows.push(((kind, name.to_owned()), v.value().to_vec()));
            }
            let state = parts::assemble(
                rows.iter()
                    .map(|((kind, name), v)| ((*kind, name.as_str()), v.as_slice())),
            )
            .map_err(|why| self.corrupt(format!("snapshot at {seq}: {why}")))?;
            Ok(Some((seq, state)))
        })
    }

    /// The newest snapshot sealed whole, as a full copy carries it (ha.md §5.2),
    /// with its sequence number.
    pub fn snapshot_sealed(&self) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        Ok(self
            .snapshot()?
            .map(|(seq, state)| (seq, seal_state(&state))))
    }

    /// The audit trail's records up to `seq` as stored (sealed), by sequence number.
    pub fn audit_sealed_upto(&self, seq: u64) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        self.guarded(|| {
            let txn = self.db.begin_read().map_err(|e| self.db_err(e))?;
            let table = txn.open_table(AUDIT).map_err(|e| self.db_err(e))?;
            let mut out = Vec::new();
            for entry in table.range(..=seq).map_err(|e| self.db_err(e))? {
                let (k, v) = entry.map_err(|e| self.db_err(e))?;
                out.push((k.value(), v.value().to_vec()));
            }
            Ok(out)
        })
    }

    /// The whole audit trail: entries the compaction moved aside, then those still
    /// in the journal, in order.
    pub fn audit_entries(&self) -> Result<Vec<AuditEntry>, StoreError> {
        self.guarded(|| {
            let txn = self.db.begin_read().map_err(|e| self.db_err(e))?;
            let mut out = Vec::new();
            let table = txn.open_table(AUDIT).map_err(|e| self.db_err(e))?;
            for entry in table.iter().map_err(|e| self.db_err(e))? {
                let (k, v) = entry.map_err(|e| self.db_err(e))?;
                match unseal(v.value()) {
                    Ok(Record::Audit(e)) => out.push(e),
                    Ok(_) => {
                        return Err(self
                            .corrupt(format!("audit record {} is not an audit entry", k.value())));
                    }
                    Err(why) => {
                        return Err(self.corrupt(format!("audit record {}: {why}", k.value())));
                    }
                }
            }
            Ok(out)
        })
    }
}

impl Store {
    /// Opens the store at `path`, creating it if it does not exist. Checks the
    /// schema version, and migrates older ones (store.md §1.2).
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Store::open_with_segments(path, SEGMENT_RECORDS)
    }

    /// [`Store::open`], with `segment_records` records per journal segment if the
    /// store is new (an existing store keeps its own; tests use small segments to
    /// see compaction with few records).
    pub fn open_with_segments(path: &Path, segment_records: u64) -> Result<Store, StoreError> {
        let name = path.display().to_string();
        let db_err = |e: redb::Error| StoreError::Database {
            path: name.clone(),
            source: Box::new(e),
        };
        // redb reports damage as errors; a panic inside it on a damaged file is
        // turned into the same clear error rather than taking the process down.
        let opened = std::panic::catch_unwind(|| Database::create(path));
        let db = match opened {
            Ok(r) => r.map_err(|e| db_err(e.into()))?,
            Err(_) => {
                return Err(StoreError::Corrupt {
                    path: name,
                    what: "the database layer could not read the file".into(),
                });
            }
        };
        let mut store = Store {
            reader: StoreReader {
                db: Arc::new(db),
                path: name.into(),
                segment: segment_records.max(1),
            },
            last_seq: 0,
            epoch: 0,
            migrated_from: None,
        };
        (store.last_seq, store.epoch, store.reader.segment) = store.prepare_schema()?;
        Ok(store)
    }

    fn db_err(&self, e: impl Into<redb::Error>) -> StoreError {
        self.reader.db_err(e)
    }

    fn corrupt(&self, what: String) -> StoreError {
        self.reader.corrupt(what)
    }

    /// Creates the tables of a new file, or checks an existing one's version and
    /// migrates it; returns its `last_seq`, epoch and records per segment.
    fn prepare_schema(&mut self) -> Result<(u64, u64, u64), StoreError> {
        let txn = self.reader.db.begin_write().map_err(|e| self.db_err(e))?;
        let (last_seq, epoch, segment) = {
            let mut meta = txn.open_table(META).map_err(|e| self.db_err(e))?;
            let version = meta
                .get("schema_version")
                .map_err(|e| self.db_err(e))?
                .map(|v| v.value());
            match version {
                None => {
                    meta.insert("schema_version", SCHEMA_VERSION)
                        .map_err(|e| self.db_err(e))?;
                    meta.insert("last_seq", 0).map_err(|e| self.db_err(e))?;
                    meta.insert("first_seq", 1).map_err(|e| self.db_err(e))?;
                    meta.insert("epoch", 0).map_err(|e| self.db_err(e))?;
                    meta.insert("segment_records", self.reader.segment)
                        .map_err(|e| self.db_err(e))?;
                }
                Some(v) if v > SCHEMA_VERSION => {
                    return Err(StoreError::TooNew {
                        path: self.reader.path.to_string(),
                        found: v,
                    });
                }
                Some(v) if v < SCHEMA_VERSION => {
                    if v < 1 {
                        return Err(self
                            .corrupt(format!("schema version {v} is not a version zgate wrote")));
                    }
                    if v == 1 {
                        // 1 → 2: the journal moves into segments (its audit records
                        // copied aside); it has never been compacted, and everything
                        // in it was written before epochs.
                        meta.insert("segment_records", self.reader.segment)
                            .map_err(|e| self.db_err(e))?;
                        self.migrate_journal(&txn)?;
                        meta.insert("first_seq", 1).map_err(|e| self.db_err(e))?;
                        meta.insert("epoch", 0).map_err(|e| self.db_err(e))?;
                    }
                    // 2 → 3: the layout is the same; version 3's journal may hold
                    // `SessionChanged` records, which version 2 cannot read. The
                    // gateway snapshots a migrated store at once (store.md §1.2).
                    // 3 → 4: the snapshot moves into parts.
                    if let Some(seq) = self.migrate_snapshot(&txn)? {
                        meta.insert("snapshot_seq", seq)
                            .map_err(|e| self.db_err(e))?;
                    }
                    meta.insert("schema_version", SCHEMA_VERSION)
                        .map_err(|e| self.db_err(e))?;
                    self.migrated_from = Some(v);
                }
                Some(_) => {}
            }
            let get = |key: &str| -> Result<u64, StoreError> {
                let value = meta.get(key).map_err(|e| self.db_err(e))?;
                value
                    .map(|v| v.value())
                    .ok_or_else(|| self.corrupt(format!("meta has no {key}")))
            };
            (
                get("last_seq")?,
                get("epoch")?,
                get("segment_records")?.max(1),
            )
        };
        txn.open_table(AUDIT).map_err(|e| self.db_err(e))?;
        txn.open_table(SNAPSHOT_PARTS).map_err(|e| self.db_err(e))?;
        txn.open_table(EPOCHS).map_err(|e| self.db_err(e))?;
        txn.commit().map_err(|e| self.db_err(e))?;
        Ok((last_seq, epoch, segment))
    }

    /// Schema 2 or 3 → 4: the whole-state snapshot (if any) into parts; the table
    /// it was in goes. Returns its sequence number.
    fn migrate_snapshot(&self, txn: &redb::WriteTransaction) -> Result<Option<u64>, StoreError> {
        let exists = txn
            .list_tables()
            .map_err(|e| self.db_err(e))?
            .any(|t| t.name() == LEGACY_SNAPSHOT.name());
        if !exists {
            return Ok(None);
        }
        let newest = {
            let table = txn
                .open_table(LEGACY_SNAPSHOT)
                .map_err(|e| self.db_err(e))?;
            let newest = table.last().map_err(|e| self.db_err(e))?;
            newest.map(|(k, v)| (k.value(), v.value().to_vec()))
        };
        let migrated = match newest {
            Some((seq, sealed)) => {
                let state: State = unseal_value(&sealed)
                    .map_err(|why| self.corrupt(format!("snapshot at {seq}: {why}")))?;
                self.write_parts(txn, &SnapshotDelta::full(&state).seal())?;
                Some(seq)
            }
            None => None,
        };
        txn.delete_table(LEGACY_SNAPSHOT)
            .map_err(|e| self.db_err(e))?;
        Ok(migrated)
    }

    /// Writes a snapshot's rows (store.md §6.2): all of them replaced for a full
    /// one, else only those it names.
    fn write_parts(
        &self,
        txn: &redb::WriteTransaction,
        delta: &SealedDelta,
    ) -> Result<(), StoreError> {
        let mut table = txn.open_table(SNAPSHOT_PARTS).map_err(|e| self.db_err(e))?;
        if delta.full {
            table.retain(|_, _| false).map_err(|e| self.db_err(e))?;
        }
        for ((kind, name), value) in &delta.parts {
            let key = (*kind, name.as_str());
            match value {
                Some(bytes) => {
                    table
                        .insert(key, bytes.as_slice())
                        .map_err(|e| self.db_err(e))?;
                }
                None => {
                    table.remove(key).map_err(|e| self.db_err(e))?;
                }
            }
        }
        Ok(())
    }

    /// Schema 1 → 2: the one journal table into segments, audit records copied.
    fn migrate_journal(&self, txn: &redb::WriteTransaction) -> Result<(), StoreError> {
        let mut sealed = Vec::new();
        {
            let legacy = txn.open_table(LEGACY_JOURNAL).map_err(|e| self.db_err(e))?;
            for entry in legacy.iter().map_err(|e| self.db_err(e))? {
                let (k, v) = entry.map_err(|e| self.db_err(e))?;
                sealed.push((k.value(), v.value().to_vec()));
            }
        }
        let mut audit = txn.open_table(AUDIT).map_err(|e| self.db_err(e))?;
        let of = |seq| self.reader.segment_of(seq);
        for chunk in sealed.chunk_by(|a, b| of(a.0) == of(b.0)) {
            let name = segment_name(of(chunk[0].0));
            let mut table = txn.open_table(segment(&name)).map_err(|e| self.db_err(e))?;
            for (seq, bytes) in chunk {
                table
                    .insert(*seq, bytes.as_slice())
                    .map_err(|e| self.db_err(e))?;
                if is_audit(bytes) {
                    audit
                        .insert(*seq, bytes.as_slice())
                        .map_err(|e| self.db_err(e))?;
                }
            }
        }
        drop(audit);
        txn.delete_table(LEGACY_JOURNAL)
            .map_err(|e| self.db_err(e))?;
        Ok(())
    }

    /// A reader of this store, for other threads.
    pub fn reader(&self) -> StoreReader {
        self.reader.clone()
    }

    /// The schema version this open migrated the file from, if it did.
    pub fn migrated_from(&self) -> Option<u64> {
        self.migrated_from
    }

    /// The sequence number of the last record stored.
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// The epoch records are written in now (0 before the first
    /// [`Store::begin_epoch`]).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Starts a new epoch: this process is now the store's writer (store.md §6). The
    /// records appended from now on carry it.
    pub fn begin_epoch(&mut self) -> Result<u64, StoreError> {
        let epoch = self.epoch + 1;
        let txn = self.reader.db.begin_write().map_err(|e| self.db_err(e))?;
        {
            let mut meta = txn.open_table(META).map_err(|e| self.db_err(e))?;
            meta.insert("epoch", epoch).map_err(|e| self.db_err(e))?;
            let mut epochs = txn.open_table(EPOCHS).map_err(|e| self.db_err(e))?;
            epochs
                .insert(epoch, self.last_seq + 1)
                .map_err(|e| self.db_err(e))?;
        }
        txn.commit().map_err(|e| self.db_err(e))?;
        self.epoch = epoch;
        Ok(epoch)
    }

    /// Starts the epoch of a takeover (ha.md §6): one above every epoch this store
    /// has seen, its first record the next one.
    pub fn begin_takeover_epoch(&mut self) -> Result<u64, StoreError> {
        let epoch = self.begin_epoch()?;
        debug_assert_eq!(epoch, crate::proto::ha::rules::takeover_epoch(epoch - 1));
        Ok(epoch)
    }

    /// Records that this store has seen epoch `epoch` (a partner active in it fenced
    /// this server, ha.md §7), durably, so that a later takeover here begins a
    /// higher one. No record is written; a lower epoch changes nothing.
    pub fn note_epoch(&mut self, epoch: u64) -> Result<(), StoreError> {
        if epoch <= self.epoch {
            return Ok(());
        }
        let txn = self.reader.db.begin_write().map_err(|e| self.db_err(e))?;
        {
            let mut meta = txn.open_table(META).map_err(|e| self.db_err(e))?;
            meta.insert("epoch", epoch).map_err(|e| self.db_err(e))?;
        }
        txn.commit().map_err(|e| self.db_err(e))?;
        self.epoch = epoch;
        Ok(())
    }

    /// Appends records replicated from the active (ha.md §5), each with the sequence
    /// number and epoch it has there, in one durable transaction. They must follow
    /// this journal without a gap, their epochs must not go down, and each must be
    /// sealed intact; otherwise nothing is stored and the error says why (the
    /// standby then asks for the stream again, or a full copy).
    pub fn append_replicated(&mut self, records: &[(u64, u64, &[u8])]) -> Result<u64, StoreError> {
        use crate::proto::ha::rules::{BatchRefusal, check_batch};
        // Records follow the epoch of the journal's last record; the epoch this store
        // has seen (`self.epoch`) may be higher (a fencing told it, ha.md §7).
        let journal_epoch = epoch_of(&self.reader.epochs()?, self.last_seq);
        let new_epochs = check_batch(
            self.last_seq,
            journal_epoch,
            records.iter().map(|(s, e, _)| (*s, *e)),
        )
        .map_err(|refusal| match refusal {
            BatchRefusal::OutOfOrder { expected, got } => StoreError::OutOfOrder { expected, got },
            BatchRefusal::StaleEpoch {
                seq,
                epoch,
                current,
            } => StoreError::StaleEpoch {
                seq,
                epoch,
                current,
            },
        })?;
        for (seq, _, sealed) in records {
            check_sealed(sealed).map_err(|why| StoreError::Refused { seq: *seq, why })?;
        }
        if records.is_empty() {
            return Ok(self.last_seq);
        }
        let epoch = new_epochs
            .last()
            .map_or(self.epoch, |(e, _)| (*e).max(self.epoch));
        let txn = self.reader.db.begin_write().map_err(|e| self.db_err(e))?;
        let mut seq = self.last_seq;
        {
            let mut audit = txn.open_table(AUDIT).map_err(|e| self.db_err(e))?;
            for (s, _, bytes) in records {
                let name = segment_name(self.reader.segment_of(*s));
                let mut journal = txn.open_table(segment(&name)).map_err(|e| self.db_err(e))?;
                journal.insert(*s, *bytes).map_err(|e| self.db_err(e))?;
                if is_audit(bytes) {
                    audit.insert(*s, *bytes).map_err(|e| self.db_err(e))?;
                }
                seq = *s;
            }
            let mut epochs = txn.open_table(EPOCHS).map_err(|e| self.db_err(e))?;
            for (e, first) in &new_epochs {
                epochs.insert(*e, *first).map_err(|e| self.db_err(e))?;
            }
            let mut meta = txn.open_table(META).map_err(|e| self.db_err(e))?;
            meta.insert("last_seq", seq).map_err(|e| self.db_err(e))?;
            meta.insert("epoch", epoch).map_err(|e| self.db_err(e))?;
        }
        txn.commit().map_err(|e| self.db_err(e))?;
        self.last_seq = seq;
        self.epoch = epoch;
        Ok(seq)
    }

    /// Replaces everything this store holds with a full copy from the active
    /// (ha.md §5.2), in one durable transaction: its state as the snapshot at `seq`,
    /// an empty journal that continues after `seq`, the active's epochs and its
    /// audit trail up to `seq`. Until it commits the previous contents stay whole,
    /// so a copy that fails part way leaves the standby as it was.
    pub fn install(
        &mut self,
        seq: u64,
        epochs: &[(u64, u64)],
        audit: &[(u64, Vec<u8>)],
        state: &[u8],
    ) -> Result<(), StoreError> {
        let state = unseal_state(state).map_err(|why| StoreError::Refused { seq, why })?;
        let rows = SnapshotDelta::full(&state).seal();
        for (s, bytes) in audit {
            check_sealed(bytes).map_err(|why| StoreError::Refused { seq: *s, why })?;
        }
        let epoch = epochs.iter().map(|(e, _)| *e).max().unwrap_or(0);
        let txn = self.reader.db.begin_write().map_err(|e| self.db_err(e))?;
        {
            let names: Vec<String> = txn
                .list_tables()
                .map_err(|e| self.db_err(e))?
                .map(|t| t.name().to_owned())
                .filter(|n| n.starts_with("journal."))
                .collect();
            for name in names {
                txn.delete_table(segment(&name))
                    .map_err(|e| self.db_err(e))?;
            }
            self.write_parts(&txn, &rows)?;
            let mut table = txn.open_table(AUDIT).map_err(|e| self.db_err(e))?;
            table.retain(|_, _| false).map_err(|e| self.db_err(e))?;
            for (s, bytes) in audit {
                table
                    .insert(*s, bytes.as_slice())
                    .map_err(|e| self.db_err(e))?;
            }
            let mut table = txn.open_table(EPOCHS).map_err(|e| self.db_err(e))?;
            table.retain(|_, _| false).map_err(|e| self.db_err(e))?;
            for (e, first) in epochs {
                table.insert(*e, *first).map_err(|e| self.db_err(e))?;
            }
            let mut meta = txn.open_table(META).map_err(|e| self.db_err(e))?;
            meta.insert("first_seq", seq + 1)
                .map_err(|e| self.db_err(e))?;
            meta.insert("snapshot_seq", seq)
                .map_err(|e| self.db_err(e))?;
            meta.insert("last_seq", seq).map_err(|e| self.db_err(e))?;
            meta.insert("epoch", epoch).map_err(|e| self.db_err(e))?;
        }
        txn.commit().map_err(|e| self.db_err(e))?;
        self.last_seq = seq;
        self.epoch = epoch;
        Ok(())
    }

    /// Appends records in one durable transaction; returns the last one's number.
    /// When it returns, the records survive a crash or power loss.
    pub fn append(&mut self, records: &[Record]) -> Result<u64, StoreError> {
        let sealed: Vec<Vec<u8>> = records.iter().map(seal).collect();
        self.append_sealed(&sealed)
    }

    /// [`Store::append`] of records sealed already (the committer seals in the
    /// writers' threads).
    pub fn append_sealed(&mut self, sealed: &[Vec<u8>]) -> Result<u64, StoreError> {
        if sealed.is_empty() {
            return Ok(self.last_seq);
        }
        let txn = self.reader.db.begin_write().map_err(|e| self.db_err(e))?;
        let mut seq = self.last_seq;
        {
            let mut audit = txn.open_table(AUDIT).map_err(|e| self.db_err(e))?;
            let mut rest = sealed;
            while !rest.is_empty() {
                let k = self.reader.segment_of(seq + 1);
                let room = ((k + 1) * self.reader.segment - seq) as usize;
                let (these, after) = rest.split_at(room.min(rest.len()));
                let name = segment_name(k);
                let mut journal = txn.open_table(segment(&name)).map_err(|e| self.db_err(e))?;
                for bytes in these {
                    seq += 1;
                    journal
                        .insert(seq, bytes.as_slice())
                        .map_err(|e| self.db_err(e))?;
                    if is_audit(bytes) {
                        audit
                            .insert(seq, bytes.as_slice())
                            .map_err(|e| self.db_err(e))?;
                    }
                }
                rest = after;
            }
            let mut meta = txn.open_table(META).map_err(|e| self.db_err(e))?;
            meta.insert("last_seq", seq).map_err(|e| self.db_err(e))?;
        }
        txn.commit().map_err(|e| self.db_err(e))?;
        self.last_seq = seq;
        Ok(seq)
    }

    /// Stores `state` as the snapshot at `seq` (the state after applying every
    /// record up to `seq`), replacing the previous snapshot, and compacts the
    /// journal: records up to `seq - keep` are dropped, their audit entries moved
    /// aside (store.md §6). One durable transaction.
    pub fn snapshot(&mut self, seq: u64, state: &State, keep: u64) -> Result<(), StoreError> {
        self.snapshot_delta(seq, &SnapshotDelta::full(state).seal(), keep)
    }

    /// [`Store::snapshot`] of the parts changed since the last snapshot, sealed
    /// already: applied to the previous snapshot's rows they make the state at
    /// `seq` (store.md §6.2).
    pub fn snapshot_delta(
        &mut self,
        seq: u64,
        delta: &SealedDelta,
        keep: u64,
    ) -> Result<(), StoreError> {
        if seq > self.last_seq {
            return Err(self.corrupt(format!(
                "a snapshot at {seq} is past the journal's end ({})",
                self.last_seq
            )));
        }
        let txn = self.reader.db.begin_write().map_err(|e| self.db_err(e))?;
        {
            if !delta.full {
                // Changes apply to the snapshot before them only.
                let meta = txn.open_table(META).map_err(|e| self.db_err(e))?;
                let before = meta.get("snapshot_seq").map_err(|e| self.db_err(e))?;
                if let Some(before) = before.map(|v| v.value()).filter(|b| *b > seq) {
                    return Err(self.corrupt(format!(
                        "the changes of a snapshot at {seq} come after one at {before}"
                    )));
                }
            }
            self.write_parts(&txn, delta)?;
            let upto = seq.saturating_sub(keep);
            let mut meta = txn.open_table(META).map_err(|e| self.db_err(e))?;
            meta.insert("snapshot_seq", seq)
                .map_err(|e| self.db_err(e))?;
            let first = meta
                .get("first_seq")
                .map_err(|e| self.db_err(e))?
                .map(|v| v.value())
                .ok_or_else(|| self.corrupt("meta has no first_seq".into()))?;
            // Whole segments only: a segment goes when its last record is at or
            // before `upto`.
            let mut next_first = first;
            let size = self.reader.segment;
            let mut k = self.reader.segment_of(first);
            while (k + 1) * size <= upto {
                let name = segment_name(k);
                txn.delete_table(segment(&name))
                    .map_err(|e| self.db_err(e))?;
                k += 1;
                next_first = k * size + 1;
            }
            if next_first != first {
                meta.insert("first_seq", next_first)
                    .map_err(|e| self.db_err(e))?;
            }
        }
        txn.commit().map_err(|e| self.db_err(e))?;
        Ok(())
    }

    /// The first record the journal still holds (1 until a compaction).
    pub fn first_seq(&self) -> Result<u64, StoreError> {
        let txn = self.reader.db.begin_read().map_err(|e| self.db_err(e))?;
        self.reader.meta(&txn, "first_seq")
    }

    /// What a restart starts from: the newest snapshot and the records after it,
    /// checked as [`Store::load`] checks the journal.
    pub fn recover(&self) -> Result<Recovered, StoreError> {
        let snapshot = self.reader.snapshot()?;
        let after = snapshot.as_ref().map_or(0, |(seq, _)| *seq);
        let first = self.first_seq()?;
        if after + 1 < first {
            return Err(self.corrupt(format!(
                "the journal starts at {first} but the snapshot is at {after}"
            )));
        }
        let tail = self
            .reader
            .since(after, usize::MAX)?
            .into_iter()
            .map(|s| s.record)
            .collect();
        Ok(Recovered { snapshot, tail })
    }

    /// Every record the journal holds, in order; any gap, extra, altered or
    /// undecodable record is an error naming its sequence number.
    pub fn load(&self) -> Result<Vec<Record>, StoreError> {
        let first = self.first_seq()?;
        let records = self.reader.since(first - 1, usize::MAX)?;
        // Nothing held past the recorded end either.
        self.reader.guarded(|| {
            let txn = self.reader.db.begin_read().map_err(|e| self.db_err(e))?;
            let mut held = 0;
            for table in txn.list_tables().map_err(|e| self.db_err(e))? {
                let name = table.name().to_owned();
                if name.starts_with("journal.") {
                    let journal = txn.open_table(segment(&name)).map_err(|e| self.db_err(e))?;
                    held += journal.len().map_err(|e| self.db_err(e))?;
                }
            }
            if held != records.len() as u64 {
                return Err(self.corrupt(format!(
                    "the journal holds {held} records but the store recorded {}",
                    records.len()
                )));
            }
            Ok(())
        })?;
        Ok(records.into_iter().map(|s| s.record).collect())
    }

    /// [`StoreReader::audit_entries`].
    pub fn audit_entries(&self) -> Result<Vec<AuditEntry>, StoreError> {
        self.reader.audit_entries()
    }
}
