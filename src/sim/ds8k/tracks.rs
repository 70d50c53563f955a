//! `TrackSet`: a set of track numbers stored as disjoint ranges.
//!
//! Out-of-sync and change-recording bitmaps of a real DS8000 are one bit per track;
//! a full box of 3390-54 volumes would need 120 KiB per relationship. Here a fresh
//! relationship is one range, background copy eats it from the front and host
//! writes punch holes, so the set stays a handful of ranges and every operation
//! costs in proportion to the ranges it touches, never to the tracks.

use std::collections::BTreeMap;
use std::ops::Range;

/// A set of tracks as disjoint, non-adjacent half-open ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrackSet {
    /// start -> end (exclusive); ranges neither overlap nor touch.
    ranges: BTreeMap<u32, u32>,
    len: u64,
}

impl TrackSet {
    /// The empty set.
    pub fn new() -> TrackSet {
        TrackSet::default()
    }

    /// Every track in `range`.
    pub fn full(range: Range<u32>) -> TrackSet {
        let mut s = TrackSet::new();
        s.insert_range(range);
        s
    }

    /// Number of tracks in the set.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when no track is in the set.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of ranges (the set's storage cost).
    pub fn range_count(&self) -> usize {
        self.ranges.len()
    }

    /// The ranges, in order.
    pub fn ranges(&self) -> impl Iterator<Item = Range<u32>> + '_ {
        self.ranges.iter().map(|(&s, &e)| s..e)
    }

    /// True when `track` is in the set.
    pub fn contains(&self, track: u32) -> bool {
        self.ranges
            .range(..=track)
            .next_back()
            .is_some_and(|(_, &end)| track < end)
    }

    /// Adds one track.
    pub fn insert(&mut self, track: u32) {
        if let Some(end) = track.checked_add(1) {
            self.insert_range(track..end);
        }
    }

    /// Adds every track of `range`.
    pub fn insert_range(&mut self, range: Range<u32>) {
        if range.is_empty() {
            return;
        }
        let (mut start, mut end) = (range.start, range.end);
        // Absorb a range that starts before `start` and reaches it.
        if let Some((&s, &e)) = self.ranges.range(..=start).next_back()
            && e >= start
        {
            if e >= end {
                return;
            }
            start = s;
            end = end.max(e);
            self.ranges.remove(&s);
            self.len -= u64::from(e - s);
        }
        // Absorb every range that starts inside [start, end].
        while let Some((&s, &e)) = self.ranges.range(start..=end).next() {
            self.ranges.remove(&s);
            self.len -= u64::from(e - s);
            end = end.max(e);
        }
        self.ranges.insert(start, end);
        self.len += u64::from(end - start);
    }

    /// Removes one track; true if it was there.
    pub fn remove(&mut self, track: u32) -> bool {
        let Some((&s, &e)) = self.ranges.range(..=track).next_back() else {
            return false;
        };
        if track >= e {
            return false;
        }
        self.ranges.remove(&s);
        if s < track {
            self.ranges.insert(s, track);
        }
        if track + 1 < e {
            self.ranges.insert(track + 1, e);
        }
        self.len -= 1;
        true
    }

    /// Removes up to `n` tracks from the front and returns their ranges.
    pub fn take_front(&mut self, mut n: u64) -> Vec<Range<u32>> {
        let mut taken = Vec::new();
        while n > 0 {
            let Some((&s, &e)) = self.ranges.iter().next() else {
                break;
            };
            self.ranges.remove(&s);
            let width = u64::from(e - s);
            if width <= n {
                taken.push(s..e);
                self.len -= width;
                n -= width;
            } else {
                // n < width <= u32::MAX
                let cut = s + n as u32;
                taken.push(s..cut);
                self.ranges.insert(cut, e);
                self.len -= n;
                n = 0;
            }
        }
        taken
    }

    /// Adds every track of `other`.
    pub fn union_with(&mut self, other: &TrackSet) {
        for r in other.ranges() {
            self.insert_range(r);
        }
    }

    /// Removes every track.
    pub fn clear(&mut self) {
        self.ranges.clear();
        self.len = 0;
    }

    /// The tracks, one by one (for tests and small sets).
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.ranges().flatten()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u32),
        InsertRange(u32, u32),
        Remove(u32),
        TakeFront(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u32..200).prop_map(Op::Insert),
            (0u32..200, 0u32..40).prop_map(|(s, w)| Op::InsertRange(s, s + w)),
            (0u32..200).prop_map(Op::Remove),
            (0u64..50).prop_map(Op::TakeFront),
        ]
    }

    proptest! {
        #[test]
        fn behaves_like_a_set_of_tracks(ops in proptest::collection::vec(op(), 0..80)) {
            let mut set = TrackSet::new();
            let mut model = BTreeSet::new();
            for op in ops {
                match op {
                    Op::Insert(t) => { set.insert(t); model.insert(t); }
                    Op::InsertRange(s, e) => { set.insert_range(s..e); model.extend(s..e); }
                    Op::Remove(t) => prop_assert_eq!(set.remove(t), model.remove(&t)),
                    Op::TakeFront(n) => {
                        let taken: Vec<u32> = set.take_front(n).into_iter().flatten().collect();
                        let expected: Vec<u32> = model.iter().copied().take(n as usize).collect();
                        for t in &expected { model.remove(t); }
                        prop_assert_eq!(taken, expected);
                    }
                }
                prop_assert_eq!(set.len(), model.len() as u64);
                prop_assert_eq!(set.iter().collect::<Vec<_>>(), model.iter().copied().collect::<Vec<_>>());
                // Ranges are disjoint and never touch (so storage is minimal).
                let rs: Vec<_> = set.ranges().collect();
                for w in rs.windows(2) { prop_assert!(w[0].end < w[1].start); }
                for t in 0..250 { prop_assert_eq!(set.contains(t), model.contains(&t)); }
            }
        }
    }

    #[test]
    fn a_full_volume_is_one_range() {
        let mut s = TrackSet::full(0..982_800);
        assert_eq!((s.len(), s.range_count()), (982_800, 1));
        s.remove(500);
        assert_eq!(s.range_count(), 2);
        assert_eq!(s.take_front(1_000), vec![0..500, 501..1_001]);
        assert_eq!(s.len(), 982_800 - 1_001);
    }
}
