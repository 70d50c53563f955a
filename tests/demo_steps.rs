//! `zgate demo` step by step, in process, on tokio's paused clock: each test runs the
//! demo's world (DS8000, z/OS, z/TPF, the gateway with its store and its TLS CSM
//! listener, all on loopback) through the steps before its own, then checks its own
//! step's outcome, so a failure names the step. The demo itself stops at the first
//! step whose check fails (`zgate::demo::steps`), so each step's assertions run there
//! too; these tests pin what each step shows. `tests/demo.rs` runs the real binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use zgate::demo::{self, DemoOptions};

/// Runs steps 1 to `last` (11 includes the audit check at the end) and returns the
/// narration of step `last` alone.
async fn step(last: u8) -> Vec<String> {
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
    let heading = format!("== {last}. ");
    let from = lines
        .iter()
        .position(|l| l.starts_with(&heading))
        .unwrap_or_else(|| panic!("no step {last} in:\n{}", lines.join("\n")));
    let mine: Vec<String> = lines[from..]
        .iter()
        .skip(1)
        .take_while(|l| !l.starts_with("== "))
        .cloned()
        .collect();
    // No later step ran.
    let next = format!("== {}. ", last + 1);
    assert!(!lines.iter().any(|l| l.starts_with(&next)), "{lines:?}");
    mine
}

fn shows(lines: &[String], expected: &[&str]) {
    for e in expected {
        assert!(
            lines.iter().any(|l| l.contains(e)),
            "missing {e:?} in:\n{}",
            lines.join("\n")
        );
    }
}

#[tokio::test(start_paused = true)]
async fn step_1_passticket_logons_to_zos_and_ztpf() {
    shows(
        &step(1).await,
        &[
            "SYSPROG logged on to SYSA with a fresh enhanced PassTicket",
            "SYSPROG logged on to TPFPROD with a fresh enhanced PassTicket",
        ],
    );
}

#[tokio::test(start_paused = true)]
async fn step_2_a_flash_through_zos_inhibits_target_writes() {
    shows(
        &step(2).await,
        &[
            "IWNR1026I",
            "Flash command in the FC1",
            "a host write to target 3100 is refused: TARGET_WRITE_INHIBITED",
        ],
    );
}

#[tokio::test(start_paused = true)]
async fn step_3_a_second_flash_inside_the_minimum_time_frame_is_refused() {
    shows(
        &step(3).await,
        &["second Flash refused: IWNR8011E", "the next is allowed at"],
    );
}

#[tokio::test(start_paused = true)]
async fn step_4_background_copy_ends_with_iwnr2772i() {
    shows(
        &step(4).await,
        &[
            "tracks still to copy",
            "IWNR2772I",
            "target 3100 holds the source's point in time",
        ],
    );
}

#[tokio::test(start_paused = true)]
async fn step_5_safeguarded_copy_backups_through_ztpf() {
    let lines = step(5).await;
    let done = lines
        .iter()
        .filter(|l| l.contains("The Backup command in the SGC1 session completed"))
        .count();
    assert_eq!(done, 3, "{lines:?}");
}

#[tokio::test(start_paused = true)]
async fn step_6_a_manual_expire_is_refused_then_allowed_by_the_property() {
    shows(
        &step(6).await,
        &[
            "refused: IWNR",
            "does not allow backups to be manually expired",
            "The Expire Backup",
        ],
    );
}

#[tokio::test(start_paused = true)]
async fn step_7_an_operators_recover_is_held_for_a_second_user() {
    shows(
        &step(7).await,
        &[
            "asked by admin, approved by approver",
            "operator's recover held: IWNR8003W",
            "approved by approver: IWNR1026I",
            "R1 3200 holds the backup's point in time",
        ],
    );
}

#[tokio::test(start_paused = true)]
async fn step_8_an_operator_is_refused_an_ungranted_action() {
    shows(
        &step(8).await,
        &[
            "is not granted the Point in Time Copy action Expire Backup",
            "the gateway's link to SYSA: 1 logon(s), enhanced HMAC-SHA-512 PassTicket (IOSHMCSM)",
            "the gateway's link to TPFPROD: 1 logon(s), enhanced HMAC-SHA-512 PassTicket (ZTPFCSM)",
        ],
    );
}

#[tokio::test(start_paused = true)]
async fn step_9_a_standby_takes_over_and_iwnr2772i_is_told_once() {
    shows(
        &step(9).await,
        &[
            "is now the standby server of",
            "the standby is synchronised",
            "took over as the active server in epoch 2",
            "stopped acting",
            "IWNR2772I told once",
            "took over as the active server in epoch 3",
            "relationship with",
        ],
    );
}

#[tokio::test(start_paused = true)]
async fn step_10_a_planned_and_an_unplanned_hyperswap_lose_no_write() {
    shows(
        &step(10).await,
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
    );
}

#[tokio::test(start_paused = true)]
async fn step_11_the_audit_trail_verifies() {
    shows(&step(11).await, &["audit entries, hash-chained, verified"]);
}
