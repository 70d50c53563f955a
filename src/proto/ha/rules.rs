//! The pair's rules, pure (protocol-specs/ha.md §5–§7): how the active answers a
//! standby's HELLO, which replicated records a standby takes, when a server stops
//! acting. The HA link (`gateway::ha`), the store (`Store::append_replicated`) and
//! the pair simulation (`testkit::ha_sim`) all decide by these functions.

use super::{HaPurpose, HaReason};

/// Who the dialer is to the listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Partnership {
    /// The listener's partner.
    Partner,
    /// The listener has no partner (and did not remove the dialer).
    None,
    /// The listener's partner is another server.
    Other,
    /// The listener removed the dialer from its relationship (ha.md §4.5).
    Removed,
}

/// What the listener knows of itself when a HELLO comes.
pub struct Listener<'a> {
    /// It is the active.
    pub active: bool,
    /// Its epoch.
    pub epoch: u64,
    /// Its last record.
    pub last_seq: u64,
    /// The first record its journal still holds.
    pub first_held: u64,
    /// Who the dialer is to it.
    pub partnership: Partnership,
    /// The epoch of record `seq` in its journal (`None` past the end).
    pub epoch_at: &'a dyn Fn(u64) -> Option<u64>,
}

/// What the dialer says in HELLO.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Follower {
    /// FOLLOW or RESYNC.
    pub purpose: HaPurpose,
    /// The highest epoch it knows.
    pub epoch: u64,
    /// Its last record.
    pub last_seq: u64,
    /// That record's epoch.
    pub last_epoch: u64,
}

/// How the active answers a standby's HELLO (ha.md §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FollowAnswer {
    /// Refused with this reason.
    Refuse(HaReason),
    /// The dialer knows a higher epoch: refused (`HIGHER_EPOCH`), and the listener
    /// stops acting (ha.md §7).
    ListenerIsStale,
    /// The stream resumes after `after`.
    Resume {
        /// The dialer's last record.
        after: u64,
    },
    /// A full copy first.
    FullCopy,
}

/// ha.md §5.1's table, first row that holds.
pub fn answer_follow(me: &Listener<'_>, them: &Follower) -> FollowAnswer {
    if !me.active {
        return FollowAnswer::Refuse(HaReason::NOT_ACTIVE);
    }
    if them.epoch > me.epoch {
        return FollowAnswer::ListenerIsStale;
    }
    if matches!(me.partnership, Partnership::Other | Partnership::Removed) {
        return FollowAnswer::Refuse(HaReason::OTHER_PARTNER);
    }
    // Two journals that agree on a record's epoch agree on everything before it:
    // epochs are made only by a takeover from a history holding every earlier one.
    let resumable = them.purpose == HaPurpose::FOLLOW
        && them.last_seq > 0
        && them.last_seq <= me.last_seq
        && them.last_seq + 1 >= me.first_held
        && (me.epoch_at)(them.last_seq) == Some(them.last_epoch);
    if resumable {
        FollowAnswer::Resume {
            after: them.last_seq,
        }
    } else {
        FollowAnswer::FullCopy
    }
}

/// Whether a server must stop acting because its partner is the active in a higher
/// epoch (ha.md §7).
pub fn fenced(i_am_active: bool, my_epoch: u64, they_are_active: bool, their_epoch: u64) -> bool {
    i_am_active && they_are_active && their_epoch > my_epoch
}

/// Whether a standby follows an active that probed it (ha.md §7).
pub fn follows_prober(
    i_am_standby: bool,
    my_epoch: u64,
    they_are_active: bool,
    their_epoch: u64,
) -> bool {
    i_am_standby && they_are_active && their_epoch >= my_epoch
}

/// The epoch a takeover begins: one above every epoch the store has seen (ha.md §6).
pub fn takeover_epoch(highest_seen: u64) -> u64 {
    highest_seen + 1
}

/// Whether the standby is synchronised: it holds everything the active held when
/// the link came up (ha.md §5.3).
pub fn synchronized(acked: u64, backlog: u64) -> bool {
    acked >= backlog
}

/// Why a standby refuses a batch of replicated records (ha.md §5.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchRefusal {
    /// A record does not follow the journal.
    OutOfOrder {
        /// The sequence number the journal takes next.
        expected: u64,
        /// What came.
        got: u64,
    },
    /// A record's epoch is older than the journal's.
    StaleEpoch {
        /// The record.
        seq: u64,
        /// Its epoch.
        epoch: u64,
        /// The journal's.
        current: u64,
    },
}

/// Checks a batch of (sequence number, epoch) against a journal that ends at
/// `last_seq` in `epoch`: the records must follow without a gap and their epochs
/// must not go down. Returns the epochs the batch begins (epoch, first record).
pub fn check_batch(
    last_seq: u64,
    epoch: u64,
    batch: impl IntoIterator<Item = (u64, u64)>,
) -> Result<Vec<(u64, u64)>, BatchRefusal> {
    let mut current = epoch;
    let mut begun = Vec::new();
    for (expected, (seq, e)) in (last_seq + 1..).zip(batch) {
        if seq != expected {
            return Err(BatchRefusal::OutOfOrder { expected, got: seq });
        }
        if e < current {
            return Err(BatchRefusal::StaleEpoch {
                seq,
                epoch: e,
                current,
            });
        }
        if e > current {
            begun.push((e, seq));
            current = e;
        }
    }
    Ok(begun)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listener(epochs: &[(u64, u64)], last: u64) -> impl Fn(u64) -> Option<u64> + '_ {
        move |seq| {
            (seq <= last).then(|| {
                epochs
                    .iter()
                    .take_while(|(_, first)| *first <= seq)
                    .last()
                    .map_or(0, |(e, _)| *e)
            })
        }
    }

    #[test]
    fn follow_answers_follow_the_table() {
        let epochs = [(1, 1), (2, 101)];
        let at = listener(&epochs, 150);
        let me = |partnership| Listener {
            active: true,
            epoch: 2,
            last_seq: 150,
            first_held: 1,
            partnership,
            epoch_at: &at,
        };
        let f = |purpose, epoch, last_seq, last_epoch| Follower {
            purpose,
            epoch,
            last_seq,
            last_epoch,
        };
        let follow = HaPurpose::FOLLOW;
        let p = Partnership::Partner;
        assert_eq!(
            answer_follow(&me(p), &f(follow, 2, 120, 2)),
            FollowAnswer::Resume { after: 120 }
        );
        assert_eq!(
            answer_follow(&me(p), &f(follow, 1, 100, 1)),
            FollowAnswer::Resume { after: 100 }
        );
        // Records an old active wrote after the takeover: diverged.
        assert_eq!(
            answer_follow(&me(p), &f(follow, 1, 105, 1)),
            FollowAnswer::FullCopy
        );
        // Past the end, nothing held, or a resync asked for.
        assert_eq!(
            answer_follow(&me(p), &f(follow, 2, 151, 2)),
            FollowAnswer::FullCopy
        );
        assert_eq!(
            answer_follow(&me(p), &f(follow, 0, 0, 0)),
            FollowAnswer::FullCopy
        );
        assert_eq!(
            answer_follow(&me(p), &f(HaPurpose::RESYNC, 2, 120, 2)),
            FollowAnswer::FullCopy
        );
        assert_eq!(
            answer_follow(&me(p), &f(follow, 3, 120, 2)),
            FollowAnswer::ListenerIsStale
        );
        assert_eq!(
            answer_follow(&me(Partnership::Other), &f(follow, 2, 120, 2)),
            FollowAnswer::Refuse(HaReason::OTHER_PARTNER)
        );
        let compacted = Listener {
            first_held: 130,
            ..me(p)
        };
        assert_eq!(
            answer_follow(&compacted, &f(follow, 2, 120, 2)),
            FollowAnswer::FullCopy
        );
        let standby = Listener {
            active: false,
            ..me(p)
        };
        assert_eq!(
            answer_follow(&standby, &f(follow, 2, 120, 2)),
            FollowAnswer::Refuse(HaReason::NOT_ACTIVE)
        );
    }

    #[test]
    fn batches_follow_without_gaps_and_epochs_never_go_down() {
        assert_eq!(
            check_batch(10, 2, [(11, 2), (12, 3), (13, 3)]),
            Ok(vec![(3, 12)])
        );
        assert_eq!(
            check_batch(10, 2, [(12, 2)]),
            Err(BatchRefusal::OutOfOrder {
                expected: 11,
                got: 12
            })
        );
        assert_eq!(
            check_batch(10, 2, [(11, 1)]),
            Err(BatchRefusal::StaleEpoch {
                seq: 11,
                epoch: 1,
                current: 2
            })
        );
        assert!(fenced(true, 1, true, 2));
        assert!(!fenced(true, 2, true, 2));
        assert!(!fenced(false, 1, true, 2));
        assert!(follows_prober(true, 2, true, 2));
        assert!(!follows_prober(true, 3, true, 2));
        assert_eq!(takeover_epoch(4), 5);
    }
}
