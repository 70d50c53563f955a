//! `zgate demo` step by step, in process, on tokio's paused clock: the demo's world
//! (DS8000, z/OS, z/TPF, the gateway with its store and its TLS CSM listener, all on
//! loopback) runs every step once, then each step's own narration is checked against
//! what that step is for, and a failure names the step. The demo itself stops at the
//! first step whose check fails (`zgate::demo::steps`), so each step's assertions run
//! there too; this pins what each step shows. `tests/demo.rs` runs the real binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use zgate::demo::{self, DemoOptions};

/// Runs steps 1 to `last` (11 includes the audit check at the end) and returns the
/// narration, one entry per step heading `== N. `: the step's number and its lines.
async fn run_through(last: u8) -> Vec<(u8, Vec<String>)> {
    let w = demo::start(DemoOptions {
        keep: false,
        clock: common::test_clock(),
        echo: false,
        last_step: last,
    })
    .await
    .unwrap();
    if let Err(e) = demo::steps(&w).await {
        panic!("{e}\n{}", w.lines().join("\n"));
    }
    let lines = w.finish().await.unwrap();
    let mut steps: Vec<(u8, Vec<String>)> = Vec::new();
    for line in lines {
        let number = line
            .strip_prefix("== ")
            .and_then(|rest| rest.split_once(". "))
            .and_then(|(n, _)| n.parse::<u8>().ok());
        match (number, steps.last_mut()) {
            (Some(n), _) => steps.push((n, Vec::new())),
            (None, Some((_, mine))) => mine.push(line),
            (None, None) => {}
        }
    }
    steps
}

/// What each step must show, by step number.
const EXPECTED: &[(u8, &str, &[&str])] = &[
    (
        1,
        "PassTicket logons to z/OS and z/TPF",
        &[
            "SYSPROG logged on to SYSA with a fresh enhanced PassTicket",
            "SYSPROG logged on to TPFPROD with a fresh enhanced PassTicket",
        ],
    ),
    (
        2,
        "a Flash through z/OS inhibits target writes",
        &[
            "IWNR1026I",
            "Flash command in the FC1",
            "a host write to target 3100 is refused: TARGET_WRITE_INHIBITED",
        ],
    ),
    (
        3,
        "a second Flash inside the minimum time frame is refused",
        &["second Flash refused: IWNR8011E", "the next is allowed at"],
    ),
    (
        4,
        "background copy ends with IWNR2772I",
        &[
            "tracks still to copy",
            "IWNR2772I",
            "target 3100 holds the source's point in time",
        ],
    ),
    (
        5,
        "Safeguarded Copy backups through z/TPF",
        &["The Backup command in the SGC1 session completed"],
    ),
    (
        6,
        "a manual expire is refused, then allowed by the property",
        &[
            "refused: IWNR",
            "does not allow backups to be manually expired",
            "The Expire Backup",
        ],
    ),
    (
        7,
        "an operator's Recover is held for a second user",
        &[
            "asked by admin, approved by approver",
            "operator's recover held: IWNR8003W",
            "approved by approver: IWNR1026I",
            "R1 3200 holds the backup's point in time",
        ],
    ),
    (
        8,
        "an operator is refused an ungranted action",
        &[
            "is not granted the Point in Time Copy action Expire Backup",
            "the gateway's link to SYSA: 1 logon(s), enhanced HMAC-SHA-512 PassTicket (IOSHMCSM)",
            "the gateway's link to TPFPROD: 1 logon(s), enhanced HMAC-SHA-512 PassTicket (ZTPFCSM)",
        ],
    ),
    (
        9,
        "a standby takes over and IWNR2772I is told once",
        &[
            "is now the standby server of",
            "the standby is synchronised",
            "took over as the active server in epoch 2",
            "stopped acting",
            "IWNR2772I told once",
            "took over as the active server in epoch 3",
            "relationship with",
        ],
    ),
    (
        10,
        "a planned and an unplanned HyperSwap lose no write",
        &[
            "MM1 Prepared: 4 pairs 75FA130 -> 75FA131 full duplex",
            "The HyperSwap command in the MM1 session completed",
            "the applications' I/O was held once",
            "every write acknowledged to the applications is on H2",
            "Start H2->H1",
            "swapped 4 pairs of session MM1 to H1 on its own",
            "MM1: Target Available, Severe, production H1, HyperSwap hs disabled",
            "every acknowledged write is on H1 again",
        ],
    ),
    (
        11,
        "the audit trail verifies",
        &["audit entries, hash-chained, verified"],
    ),
];

#[tokio::test(start_paused = true)]
async fn every_step_shows_what_it_is_for() {
    let steps = run_through(11).await;
    let numbers: Vec<u8> = steps.iter().map(|(n, _)| *n).collect();
    assert_eq!(numbers, (1..=11).collect::<Vec<u8>>(), "{steps:?}");
    let mut failures = Vec::new();
    for (n, what, expected) in EXPECTED {
        let lines = &steps[usize::from(*n) - 1].1;
        for e in *expected {
            if !lines.iter().any(|l| l.contains(e)) {
                failures.push(format!("step {n} ({what}): missing {e:?}"));
            }
        }
    }
    // Step 5 takes three backups, each completed once.
    let backups = steps[4]
        .1
        .iter()
        .filter(|l| l.contains("The Backup command in the SGC1 session completed"))
        .count();
    if backups != 3 {
        failures.push(format!("step 5: {backups} backups completed, not 3"));
    }
    assert!(failures.is_empty(), "{}\n\n{steps:#?}", failures.join("\n"));
}

#[tokio::test(start_paused = true)]
async fn the_demo_stops_after_the_step_asked_for() {
    let steps = run_through(2).await;
    let numbers: Vec<u8> = steps.iter().map(|(n, _)| *n).collect();
    assert_eq!(numbers, [1, 2], "{steps:?}");
}
