//! The audit trail: an append-only record of every action, dual-control request,
//! approval, rejection and refusal (who, what, when, result), hash-chained so that
//! [`verify`] finds any entry altered, removed or moved.
//!
//! Each entry's hash covers its content and the previous entry's hash
//! (`protocol-specs/audit.md`). A chain alone cannot show that its newest entries were
//! cut off, or that someone rewrote every hash after a change; for that, [`verify`]
//! takes the [`Head`] last seen elsewhere (the standby, the remote syslog).

use serde::{Deserialize, Serialize};
#[cfg(any(test, not(fuzzing)))]
use sha2::{Digest as _, Sha256};

/// A SHA-256 value of the chain.
pub type ChainHash = [u8; 32];

/// What an entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AuditKind {
    /// An action that ran (its result may still be a failure from the storage).
    Action,
    /// An action refused before it ran (role, grant, state, policy).
    Refusal,
    /// A dual-control request created.
    Request,
    /// A request approved by a second user.
    Approval,
    /// A request rejected, with a comment.
    Rejection,
    /// A request cancelled by its requester.
    Cancellation,
    /// A request that expired unanswered.
    Expiry,
}

impl AuditKind {
    /// The byte the hash covers (`protocol-specs/audit.md` §2); never renumbered.
    pub fn code(self) -> u8 {
        match self {
            AuditKind::Action => 1,
            AuditKind::Refusal => 2,
            AuditKind::Request => 3,
            AuditKind::Approval => 4,
            AuditKind::Rejection => 5,
            AuditKind::Cancellation => 6,
            AuditKind::Expiry => 7,
        }
    }
}

/// What the engine hands the trail; the trail numbers and chains it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// When, ms since the epoch (the engine's input time).
    pub at_ms: u64,
    /// The user (or `scheduler` for a scheduled task).
    pub who: String,
    /// The command or administrative action, in CSM's words (`Expire Backup`).
    pub what: String,
    /// What it applies to: a session, user, task or request id.
    pub target: String,
    /// What kind of event this is.
    pub kind: AuditKind,
    /// The outcome: message id and text (`IWNR…`), or the refusal's reason.
    pub result: String,
}

/// One numbered, chained entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Position in the trail, from 0, without gaps.
    pub seq: u64,
    /// The content.
    pub record: AuditRecord,
    /// The previous entry's hash ([`Head::GENESIS`]'s for the first).
    pub prev: ChainHash,
    /// This entry's hash: SHA-256 over its content and `prev`.
    pub hash: ChainHash,
}

/// Where a chain ends: the next sequence number and the last hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    /// The sequence number the next entry takes.
    pub next_seq: u64,
    /// The hash the next entry chains to.
    pub hash: ChainHash,
}

impl Head {
    /// The head of an empty trail.
    pub const GENESIS: Head = Head {
        next_seq: 0,
        hash: [0; 32],
    };
}

/// What [`verify`] found wrong, naming the first entry where the chain breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuditError {
    /// The entry's content or hash was changed.
    #[error("audit entry {seq}: content does not match its hash (altered)")]
    Altered {
        /// The altered entry.
        seq: u64,
    },
    /// An entry is missing or out of place before this one.
    #[error("audit entry {found} found where {expected} belongs (entries removed or reordered)")]
    OutOfSequence {
        /// The sequence number the chain needs here.
        expected: u64,
        /// The one found.
        found: u64,
    },
    /// The entry does not chain to the one before it.
    #[error(
        "audit entry {seq} does not chain to the entry before it (removed, reordered or rewritten)"
    )]
    Unchained {
        /// The entry whose `prev` is wrong.
        seq: u64,
    },
    /// The chain does not end where the head kept elsewhere says.
    #[error(
        "the trail ends at entry {found_next_seq} but the kept head is at {expected_next_seq} (cut off or rewritten)"
    )]
    HeadMismatch {
        /// The kept head's next sequence number.
        expected_next_seq: u64,
        /// The trail's.
        found_next_seq: u64,
    },
}

/// The writing end of the trail: appends chain onto the current head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditTrail {
    head: Head,
}

impl Default for AuditTrail {
    fn default() -> Self {
        AuditTrail {
            head: Head::GENESIS,
        }
    }
}

impl AuditTrail {
    /// Continues a trail whose last entry left `head` (after reading a store).
    pub fn resume(head: Head) -> AuditTrail {
        AuditTrail { head }
    }

    /// Where the trail ends now.
    pub fn head(&self) -> Head {
        self.head
    }

    /// Numbers and chains `record`, returning the entry to store.
    pub fn append(&mut self, record: AuditRecord) -> AuditEntry {
        let seq = self.head.next_seq;
        let prev = self.head.hash;
        let hash = entry_hash(seq, &record, &prev);
        self.head = Head {
            next_seq: seq + 1,
            hash,
        };
        AuditEntry {
            seq,
            record,
            prev,
            hash,
        }
    }
}

/// Checks `entries` as the continuation of `start` (use [`Head::GENESIS`] for a whole
/// trail) and, when given, that they end at `kept` (a head recorded elsewhere).
/// Returns where the chain ends.
pub fn verify<'a>(
    start: Head,
    entries: impl IntoIterator<Item = &'a AuditEntry>,
    kept: Option<Head>,
) -> Result<Head, AuditError> {
    let mut head = start;
    for entry in entries {
        if entry.seq != head.next_seq {
            return Err(AuditError::OutOfSequence {
                expected: head.next_seq,
                found: entry.seq,
            });
        }
        if entry_hash(entry.seq, &entry.record, &entry.prev) != entry.hash {
            return Err(AuditError::Altered { seq: entry.seq });
        }
        if entry.prev != head.hash {
            return Err(AuditError::Unchained { seq: entry.seq });
        }
        head = Head {
            next_seq: entry.seq + 1,
            hash: entry.hash,
        };
    }
    match kept {
        Some(kept) if kept != head => Err(AuditError::HeadMismatch {
            expected_next_seq: kept.next_seq,
            found_next_seq: head.next_seq,
        }),
        _ => Ok(head),
    }
}

/// SHA-256 over the entry's canonical bytes (`protocol-specs/audit.md` §2): a domain
/// tag, seq and time big-endian, the kind's code, each text as a 4-byte big-endian
/// length and its UTF-8 bytes, then the previous hash.
fn entry_hash(seq: u64, record: &AuditRecord, prev: &ChainHash) -> ChainHash {
    // The fuzz targets check that the journal replays to the same chain head, not
    // that SHA-256 resists forgery (unit and property tests check the real chain):
    // there a cheap hash of the same bytes in the same order stands in for it.
    #[cfg(fuzzing)]
    let mut h = cheap::Hasher::default();
    #[cfg(not(fuzzing))]
    let mut h = Sha256::new();
    h.update(b"zgate-audit-v1\0");
    h.update(seq.to_be_bytes());
    h.update(record.at_ms.to_be_bytes());
    h.update([record.kind.code()]);
    for text in [&record.who, &record.what, &record.target, &record.result] {
        // Texts are bounded far below 4 GiB by the engine's inputs; saturate anyway.
        let len = u32::try_from(text.len()).unwrap_or(u32::MAX);
        h.update(len.to_be_bytes());
        h.update(text.as_bytes());
    }
    h.update(prev);
    h.finalize().into()
}

/// The fuzz build's stand-in for SHA-256 in [`entry_hash`] (FNV-1a, spread over 32
/// bytes): same inputs, same order, a fraction of the cost.
#[cfg(fuzzing)]
mod cheap {
    pub(super) struct Hasher(u64);

    impl Default for Hasher {
        fn default() -> Self {
            Hasher(0xcbf2_9ce4_8422_2325)
        }
    }

    impl Hasher {
        pub(super) fn update(&mut self, bytes: impl AsRef<[u8]>) {
            for b in bytes.as_ref() {
                self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
            }
        }

        pub(super) fn finalize(self) -> [u8; 32] {
            let mut out = [0u8; 32];
            for (i, chunk) in out.chunks_mut(8).enumerate() {
                let word = self.0.rotate_left(16 * i as u32) ^ (i as u64);
                chunk.copy_from_slice(&word.to_be_bytes());
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(i: u64) -> AuditRecord {
        AuditRecord {
            at_ms: 1_764_000_000_000 + i * 1000,
            who: "admin".into(),
            what: "Backup".into(),
            target: "SGC1".into(),
            kind: AuditKind::Action,
            result: format!("IWNR1026I backup {i} taken"),
        }
    }

    fn trail(n: u64) -> (Vec<AuditEntry>, Head) {
        let mut t = AuditTrail::default();
        let entries: Vec<_> = (0..n).map(|i| t.append(record(i))).collect();
        (entries, t.head())
    }

    #[test]
    fn an_untouched_trail_verifies_and_ends_at_its_head() {
        let (entries, head) = trail(5);
        assert_eq!(verify(Head::GENESIS, &entries, Some(head)), Ok(head));
        // A suffix verifies from the head before it, as a reader of new entries would.
        let mid = Head {
            next_seq: 2,
            hash: entries[1].hash,
        };
        assert_eq!(verify(mid, &entries[2..], None), Ok(head));
    }

    #[test]
    fn any_changed_field_is_found_at_its_entry() {
        let (entries, _) = trail(4);
        let changes: [fn(&mut AuditEntry); 7] = [
            |e| e.record.at_ms += 1,
            |e| e.record.who.push('x'),
            |e| e.record.what = "Expire Backup".into(),
            |e| e.record.target.clear(),
            |e| e.record.kind = AuditKind::Approval,
            |e| e.record.result.push('!'),
            |e| e.hash[31] ^= 1,
        ];
        for change in changes {
            let mut tampered = entries.clone();
            change(&mut tampered[2]);
            assert_eq!(
                verify(Head::GENESIS, &tampered, None),
                Err(AuditError::Altered { seq: 2 })
            );
        }
    }

    #[test]
    fn text_boundaries_are_part_of_the_hash() {
        // Moving a character between two texts keeps their concatenation but not the hash.
        let mut a = record(0);
        let mut b = record(0);
        a.who = "ad".into();
        a.what = "minBackup".into();
        b.who = "adm".into();
        b.what = "inBackup".into();
        assert_ne!(entry_hash(0, &a, &[0; 32]), entry_hash(0, &b, &[0; 32]));
    }

    #[test]
    fn removed_and_reordered_entries_are_found() {
        let (entries, _) = trail(5);
        let mut removed = entries.clone();
        removed.remove(2);
        let out_of_sequence = |expected, found| Err(AuditError::OutOfSequence { expected, found });
        assert_eq!(verify(Head::GENESIS, &removed, None), out_of_sequence(2, 3));
        let mut swapped = entries.clone();
        swapped.swap(1, 3);
        assert_eq!(verify(Head::GENESIS, &swapped, None), out_of_sequence(1, 3));
        // Renumbering to hide a removal breaks the content hash; rehashing breaks the link.
        let mut renumbered = removed.clone();
        renumbered[2].seq = 2;
        assert_eq!(
            verify(Head::GENESIS, &renumbered, None),
            Err(AuditError::Altered { seq: 2 })
        );
        renumbered[2].hash = entry_hash(2, &renumbered[2].record, &renumbered[2].prev);
        assert_eq!(
            verify(Head::GENESIS, &renumbered, None),
            Err(AuditError::Unchained { seq: 2 })
        );
    }

    #[test]
    fn a_cut_off_or_rewritten_trail_is_found_only_against_a_kept_head() {
        let (entries, head) = trail(5);
        let cut = &entries[..3];
        assert!(verify(Head::GENESIS, cut, None).is_ok());
        assert_eq!(
            verify(Head::GENESIS, cut, Some(head)),
            Err(AuditError::HeadMismatch {
                expected_next_seq: 5,
                found_next_seq: 3
            })
        );
        // Someone rewrites entry 1 and re-chains everything after it.
        let mut rewritten = AuditTrail::default();
        let forged: Vec<_> = (0..5)
            .map(|i| {
                let mut r = record(i);
                if i == 1 {
                    r.result = "IWNR1026I nothing to see".into();
                }
                rewritten.append(r)
            })
            .collect();
        assert!(verify(Head::GENESIS, &forged, None).is_ok());
        assert!(matches!(
            verify(Head::GENESIS, &forged, Some(head)),
            Err(AuditError::HeadMismatch { .. })
        ));
    }

    #[test]
    fn a_resumed_trail_continues_the_chain() {
        let (mut entries, head) = trail(3);
        let mut resumed = AuditTrail::resume(head);
        entries.push(resumed.append(record(3)));
        assert_eq!(
            verify(Head::GENESIS, &entries, Some(resumed.head())),
            Ok(resumed.head())
        );
    }
}

#[cfg(test)]
mod spec_example {
    use super::*;

    /// `protocol-specs/audit.md` §2: the page's canonical bytes and hash are the code's.
    #[test]
    fn the_pages_example_is_the_codes_hash() {
        let page = include_str!("../../protocol-specs/audit.md");
        let block = page.split("```").nth(1).expect("the example block");
        let bytes: Vec<u8> = block
            .split_whitespace()
            .map(|t| u8::from_str_radix(t, 16).expect("hex"))
            .collect();
        let hash_line = page
            .lines()
            .find_map(|l| l.strip_prefix("hash: `"))
            .expect("the hash line");
        let page_hash = hex::decode(hash_line.trim_end_matches('`')).expect("hex hash");

        let record = AuditRecord {
            at_ms: 1_764_072_000_000,
            who: "ADMIN1".into(),
            what: "Expire Backup".into(),
            target: "SGC1".into(),
            kind: AuditKind::Request,
            result: "pending".into(),
        };
        let digest: [u8; 32] = Sha256::digest(&bytes).into();
        assert_eq!(digest.as_slice(), page_hash.as_slice());
        assert_eq!(
            entry_hash(0, &record, &[0; 32]).as_slice(),
            page_hash.as_slice()
        );
        let entry = AuditTrail::default().append(record);
        assert_eq!(entry.hash.as_slice(), page_hash.as_slice());
    }
}
