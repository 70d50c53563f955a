//! PassTicket speed, against the cost of the primitives the algorithms are made of.
//!
//! Targets (issue 2): a legacy ticket costs ≤ 1.1× the 8 DES block encryptions it
//! needs; an enhanced ticket ≤ 1.1× its 7 HMAC-SHA-512 operations; evaluation with
//! the replay check ≥ 200k/s on one core. Run: `cargo bench --bench passticket`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use des::Des;
use des::cipher::{Array, BlockCipherEncrypt, KeyInit};
use hmac::{Hmac, Mac};
use sha2::Sha512;
use zgate::passticket::evaluator::{Evaluator, EvaluatorConfig, PtktProfile, UserProfile};
use zgate::passticket::{
    EnhancedGenerator, EnhancedKey, LegacyGenerator, LegacyKey, PassTicket, RacfName, TicketType,
};

const LEGACY_KEY: &str = "0123456789ABCDEF";
const T0: u64 = 1_764_028_800;

fn names() -> (RacfName, RacfName) {
    (
        RacfName::parse("user", "HOSTUSR").unwrap(),
        RacfName::parse("appl", "IOSHMCSM").unwrap(),
    )
}

fn enhanced_key() -> EnhancedKey {
    EnhancedKey::from_hex(&"00112233445566778899AABBCCDDEEFF".repeat(4)).unwrap()
}

fn primitives(c: &mut Criterion) {
    let mut g = c.benchmark_group("primitive");
    let des = Des::new(&Array::from([1, 35, 69, 103, 137, 171, 205, 239]));
    g.bench_function("des_block", |b| {
        let mut block = Array::from([0u8; 8]);
        b.iter(|| {
            des.encrypt_block(black_box(&mut block));
        })
    });
    let keyed = <Hmac<Sha512> as KeyInit>::new_from_slice(&[0x11; 64]).unwrap();
    g.bench_function("hmac_sha512_20B_from_keyed_state", |b| {
        b.iter(|| {
            let mut m = keyed.clone();
            m.update(black_box(&[0x42u8; 20]));
            black_box(m.finalize().into_bytes())
        })
    });
    g.finish();
}

fn generation(c: &mut Criterion) {
    let (user, appl) = names();
    let mut g = c.benchmark_group("generate");
    let legacy = LegacyGenerator::new(&LegacyKey::from_hex(LEGACY_KEY).unwrap());
    let mut t = T0;
    g.bench_function("legacy_ticket", |b| {
        b.iter(|| {
            t += 1;
            black_box(legacy.generate(&user, &appl, t))
        })
    });
    for tt in [TicketType::Upper, TicketType::Mixed] {
        let enhanced = EnhancedGenerator::new(&enhanced_key(), tt);
        g.bench_function(format!("enhanced_ticket_{tt}"), |b| {
            b.iter(|| {
                t += 1;
                black_box(enhanced.generate(&user, &appl, t))
            })
        });
    }
    g.finish();
}

/// One evaluator and N distinct valid tickets (one per second), so every evaluation
/// passes the window check and inserts into the replay cache.
fn evaluation_setup(n: usize, enhanced: bool) -> (Evaluator, Vec<PassTicket>) {
    let (user, appl) = names();
    let mut p = PtktProfile::new("IOSHMCSM");
    // Tickets spread over ±300 s: both windows at their largest so every one passes.
    p.enhanced_window_secs = 600;
    let tickets = if enhanced {
        let g = EnhancedGenerator::new(&enhanced_key(), TicketType::Upper);
        p.enhanced_key = Some((enhanced_key(), TicketType::Upper));
        (0..n as u64)
            .map(|i| g.generate(&user, &appl, T0 - 300 + i % 600))
            .collect()
    } else {
        let g = LegacyGenerator::new(&LegacyKey::from_hex(LEGACY_KEY).unwrap());
        p.legacy_key = Some(LegacyKey::from_hex(LEGACY_KEY).unwrap());
        (0..n as u64)
            .map(|i| g.generate(&user, &appl, T0 - 300 + i % 600))
            .collect()
    };
    let mut e = Evaluator::new(EvaluatorConfig::default());
    e.define_profile(p).unwrap();
    e.define_user(UserProfile {
        user,
        default_group: None,
        protected: false,
    });
    (e, tickets)
}

fn evaluation(c: &mut Criterion) {
    let (user, appl) = names();
    const N: usize = 600;
    let mut g = c.benchmark_group("evaluate_with_replay_check");
    g.throughput(Throughput::Elements(N as u64));
    for (label, enhanced) in [("legacy", false), ("enhanced_upper", true)] {
        g.bench_function(label, |b| {
            b.iter_batched_ref(
                || evaluation_setup(N, enhanced),
                |(e, tickets)| {
                    for t in tickets.iter() {
                        assert!(e.evaluate(&user, None, &appl, t, T0).is_ok());
                    }
                },
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, primitives, generation, evaluation);
criterion_main!(benches);
