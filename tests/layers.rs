//! The layer rule, checked on every `cargo test`: the pure layers use no sockets,
//! tasks, clocks or randomness, and dependencies point down (`.ci/check-layers`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[test]
fn pure_layers_stay_pure_and_dependencies_point_down() {
    let out = std::process::Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/.ci/check-layers"))
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
