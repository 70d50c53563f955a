//! `zgate demo` as a user runs it: the binary, every step passing, exit 0. (Real
//! time: about ten seconds; the demo's volumes are small so that copies finish fast.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[test]
fn every_demo_step_passes() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_zgate"))
        .arg("demo")
        .current_dir(dir.path())
        .env("RUST_LOG", "warn")
        .env_remove("ZGATE_ADMIN_PASSWORD")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "demo failed:\n{stdout}\n{stderr}");
    for expected in [
        "logged on to SYSA with a fresh enhanced PassTicket",
        "logged on to TPFPROD with a fresh enhanced PassTicket",
        "a host write to target 3100 is refused: TARGET_WRITE_INHIBITED",
        "second Flash refused: IWNR8011E",
        "the next is allowed at",
        "IWNR2772I",
        "target 3100 holds the source's point in time",
        "The Backup command in the SGC1 session completed",
        "does not allow backups to be manually expired",
        "The Expire Backup",
        "operator's recover held: IWNR8003W",
        "R1 3200 holds the backup's point in time",
        "is not granted the Point in Time Copy action Expire Backup",
        "the gateway's link to SYSA: 1 logon(s), enhanced HMAC-SHA-512 PassTicket (IOSHMCSM)",
        "the gateway's link to TPFPROD: 1 logon(s), enhanced HMAC-SHA-512 PassTicket (ZTPFCSM)",
        "The HyperSwap command in the MM1 session completed",
        "swapped 4 pairs of session MM1 to H1 on its own",
        "audit entries, hash-chained, verified",
        "every step passed",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
    // Nothing secret on the screen: no key, no password material.
    assert!(!stdout.contains("HMCPASS1"), "{stdout}");
    assert!(!stderr.contains("HMCPASS1"), "{stderr}");
}
