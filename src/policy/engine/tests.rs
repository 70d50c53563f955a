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

fn discover_hmc(address: &str) -> Command {
    Command::Discover(Discover::StorageSystem {
        address: address.into(),
        user: "CSMADMIN".into(),
        password: crate::policy::inventory::Sealed(vec![1, 2, 3]),
    })
}

fn found(address: &str, serial: &str) -> crate::policy::inventory::Discovered {
    crate::policy::inventory::Discovered::StorageSystem(StorageSystem {
        serial: serial.into(),
        address: address.into(),
        user: "CSMADMIN".into(),
        password: crate::policy::inventory::Sealed(vec![4, 5, 6]),
    })
}

/// policy.md §4.2: authority before any side effect. A Monitor's discovery is
/// refused and no logon is handed to the shell.
#[test]
fn a_discovery_is_authorized_before_any_logon() {
    let mut e = engine();
    let reply = e.handle_command(
        "admin",
        Command::CreateUser {
            name: "mon".into(),
            role: Role::Monitor,
            grant: None,
            password_hash: HASH.into(),
        },
        1,
    );
    assert_eq!(reply.outcome, Outcome::Done);
    let reply = e.handle_command("mon", discover_hmc("127.0.0.1:1750"), 2);
    assert_eq!(reply.message.id, ids::NOT_AUTHORIZED, "{reply:?}");
    assert_eq!(e.poll_discovery(), None);
}

/// policy.md §4.2: six discovery logons a minute for the whole server; the seventh
/// is refused before it is made, and a minute later one is allowed again.
#[test]
fn discoveries_are_limited_to_six_a_minute() {
    let mut e = engine();
    for i in 0..6u64 {
        let reply = e.handle_command("admin", discover_hmc("127.0.0.1:1750"), 1_000 + i);
        assert!(matches!(reply.outcome, Outcome::Started(_)), "{reply:?}");
    }
    let reply = e.handle_command("admin", discover_hmc("127.0.0.1:1750"), 2_000);
    assert_eq!(reply.outcome, Outcome::Refused(codes::TOO_MANY_DISCOVERIES));
    assert_eq!(std::iter::from_fn(|| e.poll_discovery()).count(), 6);
    let reply = e.handle_command("admin", discover_hmc("127.0.0.1:1750"), 61_000);
    assert!(matches!(reply.outcome, Outcome::Started(_)), "{reply:?}");
}

/// policy.md §4.2: what a discovery learns is defined as its caller, and the door
/// that started it is told how it ended; a failed logon defines nothing; a caller
/// removed while the logon was under way defines nothing either.
#[test]
fn what_a_discovery_learns_is_defined_as_its_caller() {
    let mut e = engine();
    let addr = "127.0.0.1:1750";
    let Outcome::Started(id) = e.handle_command("admin", discover_hmc(addr), 10).outcome else {
        panic!("not started");
    };
    let d = e.poll_discovery().unwrap();
    assert_eq!(d.id, id);
    e.handle_discovery(id, Ok(found(addr, "75FA120")), 20);
    assert!(e.state().systems.contains_key("75FA120"));
    let f = e.poll_finished().unwrap();
    assert_eq!(f.action, id);
    assert_eq!(f.message.unwrap().id, ids::CHANGED);
    // A second answer to the same discovery changes nothing.
    e.handle_discovery(id, Ok(found(addr, "75FA999")), 21);
    assert!(!e.state().systems.contains_key("75FA999"));
    assert_eq!(e.poll_finished(), None);

    let Outcome::Started(id) = e.handle_command("admin", discover_hmc(addr), 30).outcome else {
        panic!("not started");
    };
    e.handle_discovery(id, Err("the logon was refused".into()), 40);
    let f = e.poll_finished().unwrap();
    assert_eq!(f.message.unwrap().id, ids::STORAGE_FAILED);
    assert_eq!(e.state().systems.len(), 1);

    // An answer naming another address is not taken.
    let Outcome::Started(id) = e.handle_command("admin", discover_hmc(addr), 50).outcome else {
        panic!("not started");
    };
    e.handle_discovery(id, Ok(found("127.0.0.1:9", "75FA555")), 60);
    assert_eq!(
        e.poll_finished().unwrap().message.unwrap().id,
        ids::STORAGE_FAILED
    );
    assert!(!e.state().systems.contains_key("75FA555"));

    // The caller is removed while its logon is under way.
    let reply = e.handle_command(
        "admin",
        Command::CreateUser {
            name: "admin2".into(),
            role: Role::Administrator,
            grant: None,
            password_hash: HASH.into(),
        },
        70,
    );
    assert_eq!(reply.outcome, Outcome::Done);
    let Outcome::Started(id) = e.handle_command("admin2", discover_hmc(addr), 80).outcome else {
        panic!("not started");
    };
    let reply = e.handle_command(
        "admin",
        Command::RemoveUser {
            name: "admin2".into(),
        },
        90,
    );
    assert_eq!(reply.outcome, Outcome::Done);
    e.handle_discovery(id, Ok(found(addr, "75FA777")), 100);
    assert!(!e.state().systems.contains_key("75FA777"));
    assert_eq!(
        e.poll_finished().unwrap().message.unwrap().id,
        ids::NOT_AUTHORIZED
    );
}
