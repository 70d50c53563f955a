//! Invariants of the policy engine over arbitrary operation sequences
//! (protocol-specs/policy.md §9), against the simulated DS8000: no sequence drops a
//! session below its minimum backups; no gated action runs without approval by a
//! second authorised user, or twice; an Operator never runs an ungranted action; no
//! Flash inside the minimum time frame; replaying the journal after every step
//! rebuilds the same engine. The same checks drive the cargo-fuzz target `engine`.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use zgate::fuzzing::engine::{Op, TOUR_REACHES, run, tour};

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]

    #[test]
    fn engine_invariants_hold(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        run(&Op::decode(&bytes), true);
    }
}

/// A fixed sequence reaches the interesting places (so the property above is not
/// vacuous): commands run, requests are filed and approved, backups expire, the
/// engine restarts; and every operation encodes to bytes that decode to it.
#[test]
fn the_tour_reaches_everything() {
    let tour = tour();
    let reached = run(&tour, true);
    for what in TOUR_REACHES {
        assert!(reached.contains(what), "did not reach {what}: {reached:?}");
    }
    let bytes: Vec<u8> = tour.iter().flat_map(Op::encode).collect();
    let again: Vec<[u8; 4]> = Op::decode(&bytes).iter().map(Op::encode).collect();
    assert_eq!(again.concat(), bytes);
}
