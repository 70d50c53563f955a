//! Unit tests of the engine's edges that the scenario tests (tests/policy_engine.rs)
//! do not reach: unknown callers, bad hashes, records as JSON.
#![allow(clippy::unwrap_used)]

use super::*;

const HASH: &str = "$argon2id$v=19$m=256,t=1,p=1$dPSvPsnwvszeWFQcHoNUtQ$VkHyf3shwuBN9RYKSA5exsDDhoO9YAOy2Lqxr89Cn1o";

fn engine() -> Engine {
    let mut e = Engine::new(EngineConfig::default());
    assert!(e.bootstrap_admin("admin", HASH.into(), 0));
    e
}

#[test]
fn bootstrap_only_once_and_only_with_a_hash() {
    let mut e = Engine::new(EngineConfig::default());
    assert!(!e.bootstrap_admin("admin", "plain-password".into(), 0));
    assert!(e.bootstrap_admin("admin", HASH.into(), 0));
    assert!(!e.bootstrap_admin("other", HASH.into(), 0));
    assert_eq!(e.state().users.len(), 1);
}

#[test]
fn an_unknown_caller_is_refused_and_audited() {
    let mut e = engine();
    let reply = e.handle_command(
        "mallory",
        Command::CreateSession {
            name: "S".into(),
            kind: SessionType::Fc,
            description: String::new(),
        },
        5,
    );
    assert_eq!(reply.outcome, Outcome::Refused(codes::UNKNOWN_CALLER));
    assert!(e.state().sessions.is_empty());
    let audited: Vec<Record> = std::iter::from_fn(|| e.poll_record()).collect();
    assert!(
        audited
            .iter()
            .any(|r| matches!(r, Record::Audit(a) if a.record.who == "mallory"))
    );
}

#[test]
fn a_password_hash_must_be_argon2id() {
    let mut e = engine();
    let reply = e.handle_command(
        "admin",
        Command::CreateUser {
            name: "u".into(),
            role: Role::Monitor,
            grant: None,
            password_hash: "secret".into(),
        },
        1,
    );
    assert_eq!(reply.outcome, Outcome::Refused(codes::BAD_PROPERTY));
    assert!(!reply.message.text.contains("secret\""), "{reply:?}");
    assert!(!e.state().users.contains_key("u"));
    assert!(e.state().users["admin"].principal().role == Role::Administrator);
    assert!(!format!("{:?}", e.state().users["admin"]).contains("argon2id"));
}

#[test]
fn records_round_trip_as_json() {
    let mut e = engine();
    e.handle_command(
        "admin",
        Command::CreateSession {
            name: "S".into(),
            kind: SessionType::Sgc,
            description: "d".into(),
        },
        2,
    );
    e.handle_command(
        "admin",
        Command::SetDualControlMode(DualControlMode::FullProtection),
        3,
    );
    let records: Vec<Record> = std::iter::from_fn(|| e.poll_record()).collect();
    assert!(records.len() >= 4);
    for r in &records {
        let json = serde_json::to_string(r).unwrap();
        let back: Record = serde_json::from_str(&json).unwrap();
        assert_eq!(&back, r);
    }
}
