//! Fencing by epoch (spec: protocol-specs/ds8k.md §3.4): the box keeps, per fence
//! domain, the highest epoch a writer has shown it, and refuses changing requests
//! from an older one. A pair of zgate servers is one domain; the active's epoch
//! grows at each takeover, so once the new active has shown the box its epoch, the
//! old one cannot change anything on the box even if it never hears of the takeover.

use std::collections::BTreeMap;

use super::reason::{Ds8kError, Ds8kReason, refuse};

/// Most fence domains a box keeps (ds8k.md §3.4): a box serves a few pairs of
/// managers, and the table must stay bounded whatever clients send.
pub const MAX_FENCE_DOMAINS: usize = 64;

/// Who sends a changing request: its fence domain and its epoch there. Domain 0 is
/// no domain (a host, a tool): such requests are never fenced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Fence {
    /// The writers' group (zgate: a hash of the pair's CA certificate).
    pub domain: u64,
    /// The writer's term in the domain.
    pub epoch: u64,
}

impl Fence {
    /// Not fenced.
    pub const NONE: Fence = Fence {
        domain: 0,
        epoch: 0,
    };

    /// True when the request belongs to no domain.
    pub fn is_none(self) -> bool {
        self.domain == 0
    }
}

/// The box's fence table: the highest epoch seen per domain.
#[derive(Debug, Clone, Default)]
pub struct FenceTable {
    epochs: BTreeMap<u64, u64>,
}

impl FenceTable {
    /// The highest epoch seen from `domain` (0: none yet).
    pub fn epoch_of(&self, domain: u64) -> u64 {
        self.epochs.get(&domain).copied().unwrap_or(0)
    }

    /// Notes `fence` and answers the domain's epoch afterwards (FENCE, and the
    /// check every changing request passes first). A request with no domain passes
    /// and is not noted.
    pub fn raise(&mut self, fence: Fence) -> Result<u64, Ds8kError> {
        if fence.is_none() {
            return Ok(0);
        }
        let full = self.epochs.len() >= MAX_FENCE_DOMAINS;
        match self.epochs.get_mut(&fence.domain) {
            Some(seen) => {
                *seen = (*seen).max(fence.epoch);
                Ok(*seen)
            }
            None if full => refuse(
                Ds8kReason::FENCE_TABLE_FULL,
                format!("the box keeps {MAX_FENCE_DOMAINS} fence domains already"),
            ),
            None => {
                self.epochs.insert(fence.domain, fence.epoch);
                Ok(fence.epoch)
            }
        }
    }

    /// A changing request's check (ds8k.md §3.4): refused with `FENCED` when its
    /// domain has shown a higher epoch; otherwise its epoch is noted.
    pub fn admit(&mut self, fence: Fence) -> Result<(), Ds8kError> {
        let seen = self.epoch_of(fence.domain);
        if !fence.is_none() && fence.epoch < seen {
            return refuse(
                Ds8kReason::FENCED,
                format!(
                    "epoch {} of fence domain {:016X} is over: the box has seen epoch {seen}",
                    fence.epoch, fence.domain
                ),
            );
        }
        self.raise(fence).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fence(domain: u64, epoch: u64) -> Fence {
        Fence { domain, epoch }
    }

    #[test]
    fn an_older_epoch_of_a_domain_is_refused_and_other_domains_are_not_touched() {
        let mut t = FenceTable::default();
        assert_eq!(t.admit(fence(7, 1)), Ok(()));
        assert_eq!(t.raise(fence(7, 2)), Ok(2));
        let refused = t.admit(fence(7, 1)).unwrap_err();
        assert_eq!(refused.reason, Ds8kReason::FENCED);
        assert_eq!(t.admit(fence(7, 2)), Ok(()));
        assert_eq!(t.admit(fence(7, 3)), Ok(()));
        assert_eq!(t.epoch_of(7), 3);
        // Another pair, and requests of no domain (hosts), are not fenced.
        assert_eq!(t.admit(fence(9, 1)), Ok(()));
        assert_eq!(t.admit(Fence::NONE), Ok(()));
        assert_eq!(t.epoch_of(0), 0);
        // FENCE with an older epoch answers the newer one and changes nothing.
        assert_eq!(t.raise(fence(7, 1)), Ok(3));
        assert_eq!(t.epoch_of(7), 3);
    }

    #[test]
    fn the_table_is_bounded() {
        let mut t = FenceTable::default();
        for d in 1..=MAX_FENCE_DOMAINS as u64 {
            assert_eq!(t.admit(fence(d, 1)), Ok(()));
        }
        let full = t.admit(fence(1_000, 1)).unwrap_err();
        assert_eq!(full.reason, Ds8kReason::FENCE_TABLE_FULL);
        // Known domains go on being checked.
        assert_eq!(t.admit(fence(1, 5)), Ok(()));
        assert_eq!(
            t.admit(fence(1, 4)).map_err(|e| e.reason),
            Err(Ds8kReason::FENCED)
        );
    }
}
