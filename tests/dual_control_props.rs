//! Property: whatever users do, in whatever order, no gated change is ever released
//! to run without approval by a second user holding authority for that very change,
//! and none is released twice (`protocol-specs/policy.md` §2).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use proptest::prelude::*;
use zgate::policy::SessionType;
use zgate::policy::access::{
    ActionScope, OperatorGrant, Principal, Role, ServerAction, SessionAction, SessionScope,
};
use zgate::policy::dual_control::{Change, DualControl, DualControlMode};

fn users() -> Vec<Principal> {
    let op = |name: &str, sessions: &[&str], actions: Option<&[SessionAction]>| Principal {
        user: name.into(),
        role: Role::Operator,
        grant: Some(OperatorGrant {
            sessions: SessionScope::Named(sessions.iter().map(|s| s.to_string()).collect()),
            actions: actions.map_or(ActionScope::Default, |a| {
                ActionScope::Selected(a.iter().copied().collect())
            }),
        }),
    };
    let plain = |name: &str, role| Principal {
        user: name.into(),
        role,
        grant: None,
    };
    vec![
        plain("ADMIN1", Role::Administrator),
        plain("ADMIN2", Role::Administrator),
        plain("UADMIN", Role::UserAdministrator),
        plain("MON1", Role::Monitor),
        op("OPER1", &["SGC1", "FC1"], None),
        op("OPER2", &["SGC1"], Some(&[SessionAction::Backup])),
        op("OPER3", &["SGC1"], None),
    ]
}

fn change(i: usize, n: usize) -> Change {
    let action = SessionAction::ALL[n % SessionAction::ALL.len()];
    match i % 5 {
        0 => Change::Session {
            session: "SGC1".into(),
            kind: SessionType::Sgc,
            action,
        },
        1 => Change::Session {
            session: "FC1".into(),
            kind: SessionType::Fc,
            action,
        },
        2 => Change::Server(ServerAction::ManageStorageSystems),
        3 => Change::Server(ServerAction::ManageUsers),
        _ => Change::Mode(
            [
                DualControlMode::Off,
                DualControlMode::FullProtection,
                DualControlMode::SafeguardedCopy,
            ][n % 3],
        ),
    }
}

#[derive(Debug, Clone)]
enum Op {
    Submit {
        user: usize,
        change: usize,
        action: usize,
    },
    Approve {
        user: usize,
        request: u64,
    },
    Reject {
        user: usize,
        request: u64,
    },
    Cancel {
        user: usize,
        request: u64,
    },
    Wait {
        ms: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..7usize, 0..5usize, 0..14usize).prop_map(|(user, change, action)| Op::Submit {
            user,
            change,
            action
        }),
        (0..7usize, 1..12u64).prop_map(|(user, request)| Op::Approve { user, request }),
        (0..7usize, 1..12u64).prop_map(|(user, request)| Op::Reject { user, request }),
        (0..7usize, 1..12u64).prop_map(|(user, request)| Op::Cancel { user, request }),
        (0..600_000u64).prop_map(|ms| Op::Wait { ms }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    #[test]
    fn gated_changes_run_only_once_approved_by_a_second_authorised_user(
        mode in 0..3usize,
        ops in prop::collection::vec(op(), 1..60),
    ) {
        let users = users();
        let modes = [DualControlMode::Off, DualControlMode::FullProtection, DualControlMode::SafeguardedCopy];
        let mut dc = DualControl::new(modes[mode], 1_000_000);
        let mut now = 0u64;
        let mut released = BTreeSet::new();
        for op in ops {
            match op {
                Op::Submit { user, change: c, action } => {
                    let mode = dc.mode();
                    let change = change(c, action);
                    match dc.submit(&users[user], change.clone(), now) {
                        Ok(None) => {
                            // Runs now: only if not gated, by an authorised user.
                            prop_assert!(!change.is_gated(mode));
                            prop_assert!(change.authorized(&users[user]).is_ok());
                        }
                        Ok(Some(_)) => prop_assert!(change.is_gated(mode)),
                        Err(_) => prop_assert!(change.authorized(&users[user]).is_err()),
                    }
                }
                Op::Approve { user, request } => {
                    let before = dc.pending().find(|r| r.id == request).cloned();
                    if let Ok(r) = dc.approve(request, &users[user], now) {
                        let before = before.expect("approved a request that was pending");
                        prop_assert_eq!(&r, &before);
                        prop_assert_ne!(&r.requester, &users[user].user);
                        prop_assert!(r.change.authorized(&users[user]).is_ok());
                        prop_assert!(r.expires_ms > now);
                        prop_assert!(released.insert(r.id), "request {} released twice", r.id);
                    }
                }
                Op::Reject { user, request } => {
                    if let Ok(r) = dc.reject(request, &users[user], now) {
                        prop_assert_ne!(&r.requester, &users[user].user);
                        prop_assert!(released.insert(r.id));
                    }
                }
                Op::Cancel { user, request } => {
                    if let Ok(r) = dc.cancel(request, &users[user], now) {
                        prop_assert_eq!(&r.requester, &users[user].user);
                        prop_assert!(released.insert(r.id));
                    }
                }
                Op::Wait { ms } => now += ms,
            }
            for r in dc.pending() {
                prop_assert!(!released.contains(&r.id));
            }
        }
    }
}
