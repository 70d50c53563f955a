//! Volume and pair lists in records as runs (`protocol-specs/policy.md` §8.1): a
//! whole-box session's 32,640 volumes are one run, so a Backup's or a Flash's
//! `ActionStarted` record stays small however big the session is, and a year of
//! backups does not fill the journal with the same list.
//!
//! Written as `{"runs": [[first, count], …]}` (volumes) or `{"runs": [[source,
//! target, count], …]}` (pairs: both sides step by one). Read in that form or as the
//! plain list that records written before runs hold. A run that leaves the volume id
//! space or a list longer than the id space is refused, so a damaged record cannot
//! make a huge list.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ds8k::ids::VolumeId;

/// The most items a list may expand to: every volume id.
const MAX_ITEMS: u64 = 1 << 16;

#[derive(Serialize)]
struct Runs<T> {
    runs: Vec<T>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Wire<R, P> {
    Runs { runs: Vec<R> },
    Plain(Vec<P>),
}

fn step(v: VolumeId, by: u32) -> Option<VolumeId> {
    u16::try_from(u32::from(v.0) + by).ok().map(VolumeId)
}

/// `#[serde(with = "volume_runs::volumes")]` for a `Vec<VolumeId>`.
pub mod volumes {
    use super::*;

    /// Writes the runs.
    pub fn serialize<S: Serializer>(list: &[VolumeId], s: S) -> Result<S::Ok, S::Error> {
        let mut runs: Vec<(VolumeId, u32)> = Vec::new();
        for &v in list {
            match runs.last_mut() {
                Some((first, n)) if step(*first, *n) == Some(v) => *n += 1,
                _ => runs.push((v, 1)),
            }
        }
        Runs { runs }.serialize(s)
    }

    /// Reads runs or a plain list.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<VolumeId>, D::Error> {
        match Wire::<(VolumeId, u32), VolumeId>::deserialize(d)? {
            Wire::Plain(list) => Ok(list),
            Wire::Runs { runs } => {
                let total: u64 = runs.iter().map(|r| u64::from(r.1)).sum();
                if total > MAX_ITEMS {
                    return Err(D::Error::custom("a volume list longer than the id space"));
                }
                let mut out = Vec::with_capacity(total as usize);
                for (first, n) in runs {
                    for i in 0..n {
                        out.push(
                            step(first, i)
                                .ok_or_else(|| D::Error::custom("a run of volumes past FFFF"))?,
                        );
                    }
                }
                Ok(out)
            }
        }
    }
}

/// `#[serde(with = "volume_runs::pairs")]` for a `Vec<(VolumeId, VolumeId)>`.
pub mod pairs {
    use super::*;

    /// Writes the runs.
    pub fn serialize<S: Serializer>(
        list: &[(VolumeId, VolumeId)],
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let mut runs: Vec<(VolumeId, VolumeId, u32)> = Vec::new();
        for &(a, b) in list {
            match runs.last_mut() {
                Some((first, target, n))
                    if step(*first, *n) == Some(a) && step(*target, *n) == Some(b) =>
                {
                    *n += 1
                }
                _ => runs.push((a, b, 1)),
            }
        }
        Runs { runs }.serialize(s)
    }

    /// Reads runs or a plain list.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Vec<(VolumeId, VolumeId)>, D::Error> {
        match Wire::<(VolumeId, VolumeId, u32), (VolumeId, VolumeId)>::deserialize(d)? {
            Wire::Plain(list) => Ok(list),
            Wire::Runs { runs } => {
                let total: u64 = runs.iter().map(|r| u64::from(r.2)).sum();
                if total > MAX_ITEMS {
                    return Err(D::Error::custom("a pair list longer than the id space"));
                }
                let mut out = Vec::with_capacity(total as usize);
                for (a, b, n) in runs {
                    for i in 0..n {
                        match (step(a, i), step(b, i)) {
                            (Some(a), Some(b)) => out.push((a, b)),
                            _ => return Err(D::Error::custom("a run of pairs past FFFF")),
                        }
                    }
                }
                Ok(out)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Both {
        #[serde(with = "volumes")]
        volumes: Vec<VolumeId>,
        #[serde(with = "pairs")]
        pairs: Vec<(VolumeId, VolumeId)>,
    }

    #[test]
    fn a_whole_box_is_one_run_and_plain_lists_still_read() {
        let both = Both {
            volumes: (0..32_640).map(VolumeId).collect(),
            pairs: (0..32_640)
                .map(|i| (VolumeId(i), VolumeId(0x7F80 + i)))
                .collect(),
        };
        let json = serde_json::to_string(&both).unwrap();
        assert_eq!(
            json,
            r#"{"volumes":{"runs":[["0000",32640]]},"pairs":{"runs":[["0000","7F80",32640]]}}"#
        );
        assert_eq!(serde_json::from_str::<Both>(&json).unwrap(), both);
        let plain = r#"{"volumes":["3000","3001"],"pairs":[["3000","3100"]]}"#;
        let read: Both = serde_json::from_str(plain).unwrap();
        assert_eq!(read.volumes, vec![VolumeId(0x3000), VolumeId(0x3001)]);
        assert_eq!(read.pairs, vec![(VolumeId(0x3000), VolumeId(0x3100))]);
        for bad in [
            r#"{"volumes":{"runs":[["FFFF",2]]},"pairs":[]}"#,
            r#"{"volumes":{"runs":[["0000",4294967295]]},"pairs":[]}"#,
            r#"{"volumes":[],"pairs":{"runs":[["0000","FFFF",2]]}}"#,
        ] {
            assert!(serde_json::from_str::<Both>(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn any_lists_round_trip(
            volumes in proptest::collection::vec((0u16..0xFF00).prop_map(VolumeId), 0..40),
            pairs in proptest::collection::vec((0u16..8, 0u16..8).prop_map(|(a, b)| (VolumeId(a), VolumeId(b))), 0..40),
        ) {
            let both = Both { volumes, pairs };
            let json = serde_json::to_string(&both).unwrap();
            prop_assert_eq!(serde_json::from_str::<Both>(&json).unwrap(), both);
        }
    }
}
