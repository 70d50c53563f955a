//! Known-answer tests: every vector in testdata/passticket/vectors.json is generated,
//! decoded back to its time, and accepted by the evaluator at that time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde::Deserialize;
use zgate::passticket::evaluator::{Evaluator, EvaluatorConfig, PtktProfile, UserProfile};
use zgate::passticket::{
    Algorithm, EnhancedGenerator, EnhancedKey, LegacyGenerator, LegacyKey, PassTicket, RacfName,
    TicketType,
};

#[derive(Deserialize)]
struct Vectors {
    legacy: Vec<Vector>,
    enhanced: Vec<Vector>,
}

#[derive(Deserialize)]
struct Vector {
    id: String,
    key: String,
    user: String,
    appl: String,
    time: u64,
    #[serde(rename = "type")]
    ticket_type: Option<TicketType>,
    ticket: String,
    source: String,
    independent: bool,
}

fn load() -> Vectors {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/passticket/vectors.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn names(v: &Vector) -> (RacfName, RacfName) {
    (
        RacfName::parse("user", &v.user).unwrap(),
        RacfName::parse("appl", &v.appl).unwrap(),
    )
}

fn accept(v: &Vector, profile: PtktProfile) -> Algorithm {
    let (user, appl) = names(v);
    let mut e = Evaluator::new(EvaluatorConfig::default());
    e.define_profile(profile).unwrap();
    e.define_user(UserProfile {
        user,
        default_group: None,
        protected: false,
    });
    let ticket = PassTicket::parse(&v.ticket).unwrap();
    e.evaluate(&user, None, &appl, &ticket, v.time)
        .unwrap_or_else(|r| panic!("{}: {r}", v.id))
        .algorithm
}

#[test]
fn legacy_vectors() {
    let vectors = load();
    assert!(vectors.legacy.iter().filter(|v| v.independent).count() >= 10);
    for v in &vectors.legacy {
        let (user, appl) = names(v);
        let g = LegacyGenerator::new(&LegacyKey::from_hex(&v.key).unwrap());
        assert_eq!(
            g.generate(&user, &appl, v.time).as_str(),
            v.ticket,
            "{} ({})",
            v.id,
            v.source
        );
        let ticket = PassTicket::parse(&v.ticket).unwrap();
        assert_eq!(
            g.decode_time(&user, &appl, &ticket),
            Some(v.time as u32),
            "{}",
            v.id
        );
        let mut p = PtktProfile::new(&v.appl);
        p.legacy_key = Some(LegacyKey::from_hex(&v.key).unwrap());
        assert_eq!(accept(v, p), Algorithm::Legacy);
    }
}

#[test]
fn enhanced_vectors() {
    let vectors = load();
    assert!(vectors.enhanced.iter().filter(|v| v.independent).count() >= 10);
    for v in &vectors.enhanced {
        let (user, appl) = names(v);
        let tt = v.ticket_type.unwrap();
        let key = EnhancedKey::from_hex(&v.key).unwrap();
        let g = EnhancedGenerator::new(&key, tt);
        assert_eq!(
            g.generate(&user, &appl, v.time).as_str(),
            v.ticket,
            "{} ({})",
            v.id,
            v.source
        );
        let ticket = PassTicket::parse(&v.ticket).unwrap();
        assert_eq!(
            g.decode_time(&user, &appl, &ticket),
            Some(v.time),
            "{}",
            v.id
        );
        let mut p = PtktProfile::new(&v.appl);
        p.enhanced_key = Some((key, tt));
        assert_eq!(accept(v, p), Algorithm::Enhanced(tt));
    }
}
