//! Property tests over random keys, names and times.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use zgate::passticket::evaluator::{
    Evaluator, EvaluatorConfig, PtktProfile, RefusalReason, UserProfile,
};
use zgate::passticket::{
    EnhancedGenerator, EnhancedKey, LegacyGenerator, LegacyKey, PassTicket, RacfName, TicketType,
};

fn racf_name() -> impl Strategy<Value = RacfName> {
    "[A-Za-z0-9@#$]{1,8}".prop_map(|s| RacfName::parse("name", &s).unwrap())
}

#[derive(Debug, Clone)]
enum AnyKey {
    Legacy([u8; 8]),
    Enhanced(Vec<u8>, TicketType),
}

fn any_key() -> impl Strategy<Value = AnyKey> {
    prop_oneof![
        any::<[u8; 8]>().prop_map(AnyKey::Legacy),
        (
            prop::collection::vec(any::<u8>(), 32..=256),
            prop_oneof![Just(TicketType::Upper), Just(TicketType::Mixed)]
        )
            .prop_map(|(k, t)| AnyKey::Enhanced(k, t)),
    ]
}

fn generate(key: &AnyKey, user: &RacfName, appl: &RacfName, t: u64) -> PassTicket {
    match key {
        AnyKey::Legacy(k) => {
            LegacyGenerator::new(&LegacyKey::from_bytes(*k)).generate(user, appl, t)
        }
        AnyKey::Enhanced(k, tt) => {
            EnhancedGenerator::new(&EnhancedKey::from_bytes(k).unwrap(), *tt)
                .generate(user, appl, t)
        }
    }
}

fn evaluator(key: &AnyKey, user: RacfName, appl: &RacfName, window: u32) -> Evaluator {
    let mut p = PtktProfile::new(appl.as_str());
    p.window_secs = window;
    p.enhanced_window_secs = window;
    match key {
        AnyKey::Legacy(k) => p.legacy_key = Some(LegacyKey::from_bytes(*k)),
        AnyKey::Enhanced(k, tt) => {
            p.enhanced_key = Some((EnhancedKey::from_bytes(k).unwrap(), *tt))
        }
    }
    let mut e = Evaluator::new(EvaluatorConfig {
        revoke_after: 0,
        ..EvaluatorConfig::default()
    });
    e.define_profile(p).unwrap();
    e.define_user(UserProfile {
        user,
        default_group: None,
        protected: false,
    });
    e
}

/// Times up to 2^40 (year 36812) exercise every byte of the legacy and enhanced time fields.
const MAX_TIME: u64 = 1 << 40;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn tickets_are_eight_characters_of_the_documented_alphabet(
        key in any_key(), user in racf_name(), appl in racf_name(), t in 0..MAX_TIME
    ) {
        let ticket = generate(&key, &user, &appl, t);
        let alphabet: &[u8] = match key {
            AnyKey::Legacy(_) => b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
            AnyKey::Enhanced(_, TicketType::Upper) => b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ",
            AnyKey::Enhanced(_, TicketType::Mixed) => b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_",
        };
        prop_assert_eq!(ticket.as_str().len(), 8);
        prop_assert!(ticket.as_bytes().iter().all(|c| alphabet.contains(c)), "{}", ticket);
    }

    #[test]
    fn valid_inside_window_refused_outside(
        key in any_key(), user in racf_name(), appl in racf_name(),
        t in 1_000_000u64..MAX_TIME, window in 1u32..=600, offset in -1500i64..=1500
    ) {
        let ticket = generate(&key, &user, &appl, t);
        let mut e = evaluator(&key, user, &appl, window);
        let now = t.checked_add_signed(offset).unwrap();
        let result = e.evaluate(&user, None, &appl, &ticket, now);
        if offset.unsigned_abs() <= u64::from(window) {
            prop_assert!(result.is_ok(), "{:?}", result);
            prop_assert_eq!(result.unwrap().skew_secs, -offset);
        } else {
            let expected = if offset > 0 { RefusalReason::Expired } else { RefusalReason::NotYetValid };
            prop_assert_eq!(result.map_err(|r| r.reason), Err(expected));
        }
    }

    #[test]
    fn replay_is_refused(key in any_key(), user in racf_name(), appl in racf_name(), t in 1_000_000u64..MAX_TIME) {
        let ticket = generate(&key, &user, &appl, t);
        let mut e = evaluator(&key, user, &appl, 600);
        prop_assert!(e.evaluate(&user, None, &appl, &ticket, t).is_ok());
        let again = e.evaluate(&user, None, &appl, &ticket, t + 1);
        prop_assert_eq!(again.map_err(|r| r.reason), Err(RefusalReason::Replayed));
    }

    #[test]
    fn wrong_key_is_refused(
        key in any_key(), other in any_key(), user in racf_name(), appl in racf_name(), t in 1_000_000u64..MAX_TIME
    ) {
        let ticket = generate(&key, &user, &appl, t);
        prop_assume!(generate(&other, &user, &appl, t) != ticket);
        let mut e = evaluator(&other, user, &appl, 600);
        // A wrong key decodes the ticket to an unrelated time, or not at all.
        match e.evaluate(&user, None, &appl, &ticket, t) {
            Err(r) => prop_assert!(
                matches!(r.reason, RefusalReason::BadTicket | RefusalReason::Expired | RefusalReason::NotYetValid),
                "{:?}", r
            ),
            // A chance collision must still be a genuine ticket of the other key.
            Ok(a) => prop_assert_eq!(generate(&other, &user, &appl, t.checked_add_signed(a.skew_secs).unwrap()), ticket),
        }
    }
}
