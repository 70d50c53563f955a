//! The durable store (`protocol-specs/store.md`): the policy engine's journal of
//! [`Record`]s in an embedded ACID database (redb, used here only). A change is
//! acknowledged only after the transaction that holds it is durable on disk.
//!
//! Layout (schema version 1): table `meta` (`schema_version`, `last_seq`), table
//! `journal` (sequence number from 1 → sealed record). A sealed record is the first
//! 8 bytes of SHA-256 over the JSON encoding, then the JSON: a record the disk
//! altered is found and named, never decoded into something else.

mod group;
pub mod sealing;

use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use sha2::{Digest, Sha256};

pub use group::{CommitHandle, Committer};

use crate::policy::engine::Record;

/// The schema this build writes.
pub const SCHEMA_VERSION: u64 = 1;

const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const JOURNAL: TableDefinition<u64, &[u8]> = TableDefinition::new("journal");

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
    /// The committer stopped (after an earlier error).
    #[error("the store's committer has stopped")]
    Stopped,
}

/// Test-only helpers that reach under the store's own API (feature `testkit`).
#[cfg(any(test, feature = "testkit"))]
pub mod testing {
    use std::path::Path;

    use redb::Database;

    use super::META;

    /// Writes `version` as the file's schema version.
    pub fn set_schema_version(path: &Path, version: u64) -> Result<(), redb::Error> {
        let db = Database::open(path)?;
        let txn = db.begin_write()?;
        txn.open_table(META)?.insert("schema_version", version)?;
        txn.commit()?;
        Ok(())
    }
}

/// The journal, open.
pub struct Store {
    db: Database,
    path: String,
    last_seq: u64,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .field("last_seq", &self.last_seq)
            .finish()
    }
}

/// Seals one record: checksum, then JSON.
pub fn seal(record: &Record) -> Vec<u8> {
    // Encoding a value built from our own types cannot fail (no maps with non-string
    // keys at the top, no I/O); an empty body would fail the check on load anyway.
    let json = serde_json::to_vec(record).unwrap_or_default();
    let digest = Sha256::digest(&json);
    let mut out = Vec::with_capacity(8 + json.len());
    out.extend_from_slice(&digest[..8]);
    out.extend_from_slice(&json);
    out
}

/// Opens a sealed record; the error says what is wrong.
pub fn unseal(bytes: &[u8]) -> Result<Record, String> {
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

impl Store {
    /// Opens the store at `path`, creating it if it does not exist. Checks the
    /// schema version, and migrates older ones (none yet: version 1 is the first).
    pub fn open(path: &Path) -> Result<Store, StoreError> {
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
            db,
            path: name,
            last_seq: 0,
        };
        store.last_seq = store.prepare_schema()?;
        Ok(store)
    }

    fn db_err(&self, e: impl Into<redb::Error>) -> StoreError {
        StoreError::Database {
            path: self.path.clone(),
            source: Box::new(e.into()),
        }
    }

    fn corrupt(&self, what: String) -> StoreError {
        StoreError::Corrupt {
            path: self.path.clone(),
            what,
        }
    }

    /// Creates the tables of a new file, or checks an existing one's version.
    fn prepare_schema(&mut self) -> Result<u64, StoreError> {
        let txn = self.db.begin_write().map_err(|e| self.db_err(e))?;
        let last_seq = {
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
                }
                Some(v) if v > SCHEMA_VERSION => {
                    return Err(StoreError::TooNew {
                        path: self.path.clone(),
                        found: v,
                    });
                }
                Some(v) if v < SCHEMA_VERSION => {
                    // Migrations go here, one step per version, in this transaction.
                    return Err(
                        self.corrupt(format!("schema version {v} is not a version zgate wrote"))
                    );
                }
                Some(_) => {}
            }
            let last = meta.get("last_seq").map_err(|e| self.db_err(e))?;
            last.map(|v| v.value())
                .ok_or_else(|| self.corrupt("meta has no last_seq".into()))?
        };
        txn.open_table(JOURNAL).map_err(|e| self.db_err(e))?;
        txn.commit().map_err(|e| self.db_err(e))?;
        Ok(last_seq)
    }

    /// The sequence number of the last record stored.
    pub fn last_seq(&self) -> u64 {
        self.last_seq
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
        let txn = self.db.begin_write().map_err(|e| self.db_err(e))?;
        let mut seq = self.last_seq;
        {
            let mut journal = txn.open_table(JOURNAL).map_err(|e| self.db_err(e))?;
            for bytes in sealed {
                seq += 1;
                journal
                    .insert(seq, bytes.as_slice())
                    .map_err(|e| self.db_err(e))?;
            }
            let mut meta = txn.open_table(META).map_err(|e| self.db_err(e))?;
            meta.insert("last_seq", seq).map_err(|e| self.db_err(e))?;
        }
        txn.commit().map_err(|e| self.db_err(e))?;
        self.last_seq = seq;
        Ok(seq)
    }

    /// Every record, in order; any gap, extra, altered or undecodable record is an
    /// error naming its sequence number.
    pub fn load(&self) -> Result<Vec<Record>, StoreError> {
        let loaded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.load_inner()));
        loaded.unwrap_or_else(|_| {
            Err(self.corrupt("the database layer failed reading the journal".into()))
        })
    }

    fn load_inner(&self) -> Result<Vec<Record>, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.db_err(e))?;
        let journal = txn.open_table(JOURNAL).map_err(|e| self.db_err(e))?;
        let mut out = Vec::with_capacity(usize::try_from(self.last_seq).unwrap_or(0));
        let mut expected = 1;
        for entry in journal.iter().map_err(|e| self.db_err(e))? {
            let (k, v) = entry.map_err(|e| self.db_err(e))?;
            let seq = k.value();
            if seq != expected {
                return Err(self.corrupt(format!(
                    "journal record {expected} is missing (found {seq} in its place)"
                )));
            }
            let record = unseal(v.value())
                .map_err(|why| self.corrupt(format!("journal record {seq}: {why}")))?;
            out.push(record);
            expected += 1;
        }
        let found = expected - 1;
        if found != self.last_seq {
            return Err(self.corrupt(format!(
                "the journal holds {found} records but the store recorded {}",
                self.last_seq
            )));
        }
        Ok(out)
    }
}
