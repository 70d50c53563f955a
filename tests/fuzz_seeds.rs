//! Replays every committed fuzz seed and every past crash through the same entry
//! points the cargo-fuzz targets call, so regressions fail a plain `cargo test`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut count = 0;
    for dir in ["seeds", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_file() && path.file_name().is_some_and(|n| n != ".gitkeep") {
                run(&std::fs::read(&path).unwrap());
                count += 1;
            }
        }
    }
    assert!(count > 0, "no seeds for {target}");
}

#[test]
fn passticket_evaluate_seeds() {
    replay("passticket_evaluate", zgate::fuzzing::passticket_evaluate);
}

#[test]
fn zos_frames_seeds() {
    replay("zos_frames", zgate::fuzzing::zos_frames);
}

#[test]
fn zos_sessions_seeds() {
    replay("zos_sessions", zgate::fuzzing::zos_sessions);
}

#[test]
fn ztpf_frames_seeds() {
    replay("ztpf_frames", zgate::fuzzing::ztpf_frames);
}

#[test]
fn ztpf_sessions_seeds() {
    replay("ztpf_sessions", zgate::fuzzing::ztpf_sessions);
}

#[test]
fn ds8k_frames_seeds() {
    replay("ds8k_frames", zgate::fuzzing::ds8k_frames);
}

#[test]
fn ds8k_sessions_seeds() {
    replay("ds8k_sessions", zgate::fuzzing::ds8k_sessions);
}

#[test]
fn ds8k_model_seeds() {
    replay("ds8k_model", zgate::fuzzing::ds8k_model);
}
