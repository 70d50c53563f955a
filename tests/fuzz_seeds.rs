//! Replays every committed fuzz seed and every past crash through the same entry
//! points the cargo-fuzz targets call, so regressions fail a plain `cargo test`, and
//! checks that each seed still reaches what its name promises (a seed that only ever
//! hits "bad magic" tests nothing).
//!
//! `ZGATE_BLESS=1 cargo test --test fuzz_seeds` rewrites the generated seeds: frame
//! seeds from the golden frames in `testdata/` (with the read-size byte the frame
//! targets expect), session and model seeds from the scripts below.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use zgate::proto::{FrameKind, Message, WireBody};
use zgate::sim::ds8k::oracle::ModelOp;

type Reach = fn(&[u8]) -> BTreeSet<&'static str>;

fn fuzz_dir(kind: &str, target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join(kind)
        .join(target)
}

fn bless() -> bool {
    std::env::var_os("ZGATE_BLESS").is_some()
}

/// Every seed and regression of `target`: (file name, bytes).
fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for kind in ["seeds", "regressions"] {
        let Ok(entries) = std::fs::read_dir(fuzz_dir(kind, target)) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if path.is_file() && name != ".gitkeep" {
                out.push((name, std::fs::read(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// Writes `seeds` as the committed seeds of `target` (replacing the old ones).
fn write_seeds(target: &str, seeds: &[(String, Vec<u8>)]) {
    let dir = fuzz_dir("seeds", target);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for (name, bytes) in seeds {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

/// Replays every input; each seed named in `expect` must reach all its labels.
fn replay(target: &str, reach: Reach, expect: &dyn Fn(&str) -> Vec<&'static str>) {
    let all = inputs(target);
    assert!(!all.is_empty(), "no seeds for {target}");
    let mut failures = Vec::new();
    for (name, bytes) in &all {
        let reached = reach(bytes);
        for label in expect(name) {
            if !reached.contains(label) {
                failures.push(format!(
                    "{target}/{name}: does not reach {label} (reached {reached:?})"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ---------------------------------------------------------------------------------
// Frames: seeds are golden frames after a read-size byte.

/// The read size byte: 8 bytes per read, so every seed is also cut into pieces.
const READ_SIZE: u8 = 7;

fn frame_seeds(protocol: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(protocol);
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "bin") {
            let mut bytes = vec![READ_SIZE];
            bytes.extend(std::fs::read(&path).unwrap());
            out.push((
                path.file_stem().unwrap().to_string_lossy().to_string(),
                bytes,
            ));
        }
    }
    out.sort();
    out
}

fn frame_expectations(name: &str) -> Vec<&'static str> {
    if name.starts_with("ok_") {
        vec!["message"]
    } else {
        Vec::new()
    }
}

fn frames(target: &str, protocol: &str, reach: Reach) {
    if bless() {
        write_seeds(target, &frame_seeds(protocol));
    }
    replay(target, reach, &frame_expectations);
    // A bad seed must fail somewhere: in the stream or in a message.
    for (name, bytes) in inputs(target).iter().filter(|(n, _)| n.starts_with("bad_")) {
        let reached = reach(bytes);
        assert!(
            reached.contains("decode_error") || reached.contains("stream_error"),
            "{target}/{name} decodes cleanly: {reached:?}"
        );
    }
}

#[test]
fn zos_frames_seeds() {
    frames("zos_frames", "zos", zgate::fuzzing::zos_frames_reach);
}

#[test]
fn ztpf_frames_seeds() {
    frames("ztpf_frames", "ztpf", zgate::fuzzing::ztpf_frames_reach);
}

#[test]
fn ds8k_frames_seeds() {
    frames("ds8k_frames", "ds8k", zgate::fuzzing::ds8k_frames_reach);
}

// ---------------------------------------------------------------------------------
// Sessions: scripts of (operation, argument); operation numbers as in
// `src/fuzzing/sessions.rs` (`OPS`).

const TO_SERVER: u8 = 0;
const PUMP: u8 = 2;
const CORRUPT: u8 = 4;
const INJECT: u8 = 5;
const ADVANCE: u8 = 6;
const REQUEST: u8 = 7;
const EVENT: u8 = 8;
const DECIDE: u8 = 9;
const LOGOFF: u8 = 10;
const STREAM_ERROR: u8 = 11;

/// Setup byte: bit 0 a wrong password; the rest the request deadline - 1, seconds.
const GOOD_LONG_DEADLINE: u8 = 20;
const WRONG_PASSWORD: u8 = 21;
const GOOD_SHORT_DEADLINE: u8 = 0;

fn script(setup: u8, ops: &[(u8, u8)]) -> Vec<u8> {
    let mut out = vec![setup];
    for &(op, arg) in ops {
        out.extend([op, arg]);
    }
    out
}

const LOGON: [(u8, u8); 3] = [(PUMP, 0), (DECIDE, 0), (PUMP, 0)];

/// The Inject argument that puts example `i` of `n` on the server's side under a
/// correlation id the client does not use (70 and up).
fn inject_arg(i: usize, n: usize) -> u8 {
    (70u8..0x80).find(|a| usize::from(*a) % n == i).unwrap()
}

fn session_seeds<B: WireBody>(examples: &[Message<B>]) -> Vec<(String, Vec<u8>)> {
    let n = examples.len();
    let logon_example = examples
        .iter()
        .position(|m| {
            matches!(
                m.body,
                zgate::proto::Payload::Control(zgate::proto::Control::LogonRequest(_))
            )
        })
        .unwrap();
    let request_example = examples
        .iter()
        .position(|m| {
            m.body
                .own()
                .is_some_and(|b| b.wire_type().1 == FrameKind::Request)
        })
        .unwrap();
    let with_logon =
        |ops: &[(u8, u8)]| -> Vec<(u8, u8)> { LOGON.iter().chain(ops).copied().collect() };
    let mut seeds = vec![
        (
            "happy",
            script(
                GOOD_LONG_DEADLINE,
                &with_logon(&[
                    (REQUEST, 0),
                    (PUMP, 0),
                    (DECIDE, 0),
                    (PUMP, 0),
                    (EVENT, 0),
                    (PUMP, 0),
                    (LOGOFF, 0),
                    (PUMP, 0),
                ]),
            ),
        ),
        ("refused", script(WRONG_PASSWORD, &LOGON)),
        (
            "three_refusals",
            script(
                WRONG_PASSWORD,
                &[
                    (INJECT, inject_arg(logon_example, n) & 0x7F),
                    (DECIDE, 0),
                    (INJECT, inject_arg(logon_example, n) & 0x7F),
                    (DECIDE, 0),
                    (INJECT, inject_arg(logon_example, n) & 0x7F),
                    (DECIDE, 0),
                ],
            ),
        ),
        (
            "request_timeout",
            script(
                GOOD_SHORT_DEADLINE,
                &with_logon(&[(REQUEST, 0), (PUMP, 0), (ADVANCE, 5)]),
            ),
        ),
        (
            "peer_dead",
            script(GOOD_LONG_DEADLINE, &with_logon(&[(ADVANCE, 120)])),
        ),
        (
            "deferred_logoff_waits",
            script(
                GOOD_LONG_DEADLINE,
                &with_logon(&[
                    (REQUEST, 0),
                    (PUMP, 0),
                    (DECIDE, 3),
                    (LOGOFF, 0),
                    (PUMP, 0),
                    (DECIDE, 0),
                    (PUMP, 0),
                ]),
            ),
        ),
        (
            "rejected_request",
            script(
                GOOD_LONG_DEADLINE,
                &with_logon(&[(REQUEST, 0), (CORRUPT, 0x99), (PUMP, 0)]),
            ),
        ),
        (
            "duplicate_correlation",
            script(
                GOOD_LONG_DEADLINE,
                &with_logon(&[
                    (INJECT, inject_arg(request_example, n)),
                    (INJECT, inject_arg(request_example, n)),
                ]),
            ),
        ),
        (
            "stream_error",
            script(
                GOOD_LONG_DEADLINE,
                &with_logon(&[(STREAM_ERROR, 1), (PUMP, 0)]),
            ),
        ),
    ];
    // 64 requests outstanding at the server, then one more.
    let mut full = LOGON.to_vec();
    full.extend(std::iter::repeat_n((REQUEST, 0), 64));
    full.push((PUMP, 0));
    full.push((INJECT, inject_arg(request_example, n)));
    seeds.push(("outstanding_full", script(GOOD_LONG_DEADLINE, &full)));
    // Deliver frame by frame rather than pumping.
    seeds.push((
        "one_frame_at_a_time",
        script(
            GOOD_LONG_DEADLINE,
            &[
                (TO_SERVER, 0),
                (DECIDE, 0),
                (1, 0),
                (REQUEST, 0),
                (TO_SERVER, 0),
                (DECIDE, 1),
                (1, 0),
            ],
        ),
    ));
    seeds.into_iter().map(|(n, b)| (n.to_string(), b)).collect()
}

/// z/TPF has no events (ztpf.md §3), so its happy path has none.
fn ztpf_session_expectations(name: &str) -> Vec<&'static str> {
    let mut labels = session_expectations(name);
    labels.retain(|l| *l != "event");
    labels
}

fn session_expectations(name: &str) -> Vec<&'static str> {
    match name {
        "happy" => vec!["logged_on", "reply", "event", "logged_off"],
        "refused" => vec!["logon_refused"],
        "three_refusals" => vec!["closed_after_refusals"],
        "request_timeout" => vec!["logged_on", "request_timed_out"],
        "peer_dead" => vec!["peer_dead"],
        "deferred_logoff_waits" => vec![
            "deferred",
            "logoff_waited_for_outstanding",
            "reply",
            "logged_off",
        ],
        "rejected_request" => vec!["rejected"],
        "duplicate_correlation" => vec!["duplicate_correlation"],
        "stream_error" => vec!["stream_error"],
        "outstanding_full" => vec!["outstanding_full"],
        "one_frame_at_a_time" => vec!["logged_on", "reply"],
        _ => Vec::new(),
    }
}

fn sessions<B: WireBody>(target: &str, examples: &[Message<B>], reach: Reach) {
    if bless() {
        write_seeds(target, &session_seeds(examples));
    }
    if target.starts_with("ztpf") {
        replay(target, reach, &ztpf_session_expectations);
    } else {
        replay(target, reach, &session_expectations);
    }
}

fn examples_of<B>(all: Vec<(&'static str, Message<B>)>) -> Vec<Message<B>> {
    all.into_iter().map(|(_, m)| m).collect()
}

#[test]
fn zos_sessions_seeds() {
    let ex = examples_of(zgate::proto::zos::examples::examples());
    sessions("zos_sessions", &ex, zgate::fuzzing::zos_sessions_reach);
}

#[test]
fn ztpf_sessions_seeds() {
    let ex = examples_of(zgate::proto::ztpf::examples::examples());
    sessions("ztpf_sessions", &ex, zgate::fuzzing::ztpf_sessions_reach);
}

#[test]
fn ds8k_sessions_seeds() {
    let ex = examples_of(zgate::proto::ds8k::examples::examples());
    sessions("ds8k_sessions", &ex, zgate::fuzzing::ds8k_sessions_reach);
}

// ---------------------------------------------------------------------------------
// The storage model: scripts of operations (volume arguments index `VOLUMES`).

fn model_seeds() -> Vec<(String, Vec<u8>)> {
    use ModelOp::*;
    let scripts: Vec<(&str, Vec<ModelOp>)> = vec![
        (
            "flash_then_write",
            vec![
                Write(0, 3, 1),
                Establish(vec![(0, 1)], 0),
                Write(0, 3, 2),
                Advance(20_000),
            ],
        ),
        (
            "inhibit_and_freeze",
            vec![
                Establish(vec![(0, 1)], 0x11),
                Write(1, 0, 1),
                Write(0, 0, 2),
                Unfreeze,
                Write(0, 0, 3),
            ],
        ),
        (
            "incremental_resync",
            vec![
                Establish(vec![(2, 3)], 0x04),
                Write(2, 1, 4),
                Resync(2, 3, 0x04),
                Withdraw(2, 3, true),
            ],
        ),
        (
            "sgc_cycle",
            vec![
                Capacity(0, 10),
                Capacity(1, 10),
                Write(0, 1, 1),
                Backup(vec![0, 1]),
                Write(0, 1, 2),
                Backup(vec![0, 1]),
                Recover(0, 0, 4),
                Restore(0, 0),
                Expire(0),
            ],
        ),
        (
            "rolloff",
            vec![
                Capacity(0, 2),
                Capacity(1, 2),
                Backup(vec![0, 1]),
                Write(0, 0, 1),
                Write(0, 1, 2),
                Backup(vec![0, 1]),
                Write(0, 2, 3),
                Write(0, 3, 4),
                Write(0, 4, 5),
                Backup(vec![0, 1]),
                Write(0, 5, 1),
                Write(0, 6, 2),
            ],
        ),
        (
            "withdraw_nocopy",
            vec![
                Establish(vec![(0, 1)], 0x02),
                Write(0, 0, 5),
                Withdraw(0, 1, false),
            ],
        ),
        (
            "create_fb_delete",
            vec![
                Create(17, 0x82),
                Create(18, 0x83),
                Write(17, 0, 1),
                Establish(vec![(17, 18)], 0),
                Delete(18),
                Withdraw(17, 18, true),
                Advance(2_000),
                Delete(18),
            ],
        ),
        (
            "fan_out_limit",
            vec![
                Create(7, 1),
                Create(8, 1),
                Create(9, 1),
                Create(10, 1),
                Create(11, 1),
                Create(12, 1),
                Create(13, 1),
                FanOut(0, 1, 13),
                FanOut(0, 1, 12),
            ],
        ),
    ];
    scripts
        .into_iter()
        .map(|(name, ops)| {
            let bytes: Vec<u8> = ops
                .iter()
                .flat_map(|op| {
                    op.encode()
                        .unwrap_or_else(|| panic!("{name}: {op:?} has no byte form"))
                })
                .collect();
            (name.to_string(), bytes)
        })
        .collect()
}

fn model_expectations(name: &str) -> Vec<&'static str> {
    match name {
        "flash_then_write" => vec!["established", "written"],
        "inhibit_and_freeze" => vec![
            "established_frozen",
            "write_inhibited",
            "write_held_by_freeze",
        ],
        "incremental_resync" => vec!["resynced", "withdrawn"],
        "sgc_cycle" => vec!["backup", "recovered", "restored", "expired"],
        "rolloff" => vec!["rolled_off"],
        "withdraw_nocopy" => vec!["withdrawn"],
        "create_fb_delete" => vec!["created", "deleted", "established"],
        "fan_out_limit" => vec!["created", "target_limit_refused", "established"],
        _ => Vec::new(),
    }
}

#[test]
fn ds8k_model_seeds() {
    if bless() {
        write_seeds("ds8k_model", &model_seeds());
    }
    replay(
        "ds8k_model",
        zgate::fuzzing::ds8k_model_reach,
        &model_expectations,
    );
}

#[test]
fn ds8k_mirror_seeds() {
    let write = |v: u8, t: u8| vec![0u8, v, t];
    check_target(
        "ds8k_mirror",
        zgate::fuzzing::ds8k_mirror_reach,
        vec![
            (
                // Writes, a path failure, the manager's freeze, more writes.
                "path_failure_then_freeze",
                [
                    write(0, 1),
                    vec![4, 0],
                    write(2, 3),
                    write(0, 2),
                    vec![7],
                    write(1, 4),
                ]
                .concat(),
                vec!["frozen_consistent", "long_busy"],
            ),
            (
                // Suspend, failover, writes on H2, mend, failback, copy back.
                "swap_and_back",
                [
                    write(0, 1),
                    vec![8, 0, 9, 1],
                    write(1, 2),
                    vec![6, 9, 2, 3, 200, 3, 200, 3, 200],
                ]
                .concat(),
                vec!["failed_over", "mirroring_back", "frozen_consistent"],
            ),
        ],
    );
}

#[test]
fn passticket_evaluate_seeds() {
    replay(
        "passticket_evaluate",
        |d| {
            zgate::fuzzing::passticket_evaluate(d);
            BTreeSet::new()
        },
        &|_| Vec::new(),
    );
}

// ---------------------------------------------------------------------------------
// The emulated systems, the parsers and the storage link.

fn check_target(target: &str, reach: Reach, seeds: Vec<(&str, Vec<u8>, Vec<&'static str>)>) {
    if bless() {
        let files: Vec<(String, Vec<u8>)> = seeds
            .iter()
            .map(|(n, b, _)| (n.to_string(), b.clone()))
            .collect();
        write_seeds(target, &files);
    }
    let expect = |name: &str| -> Vec<&'static str> {
        seeds
            .iter()
            .find(|(n, _, _)| *n == name)
            .map(|(_, _, l)| l.clone())
            .unwrap_or_default()
    };
    replay(target, reach, &expect);
}

#[test]
fn zos_system_seeds() {
    let load = [1u8, 0, 1, 0x01, 0x02, 0x03, 0x04];
    let mut cycle = load.to_vec();
    cycle.extend([2, 0, 4, 0, 2, 0, 7]);
    let mut logons = vec![8, 0x01, 1];
    for _ in 0..3 {
        logons.extend([8, 0x09, 1]);
    }
    logons.extend([8, 0x01, 1]);
    let mut storage = vec![5, 0x05, 0, 0x01, 0x02, 6, 1, 0x01, 0x02, 9, 200, 0];
    storage.extend(&load);
    check_target(
        "zos_system",
        zgate::fuzzing::zos_system_reach,
        vec![
            (
                "hyperswap_cycle",
                cycle,
                vec!["enabled", "planned_swap", "unplanned_swap"],
            ),
            (
                "logons_and_revocation",
                logons,
                vec!["logon_accepted", "revoked_refused"],
            ),
            ("flash_backup_query", storage, vec![]),
        ],
    );
}

#[test]
fn ztpf_system_seeds() {
    check_target(
        "ztpf_system",
        zgate::fuzzing::ztpf_system_reach,
        vec![
            (
                "backup_flash_refusals",
                vec![
                    2, 0, 0x01, 2, 0, 0x0F, 1, 0x01, 0, 0x01, 0x02, 1, 0, 0, 0x01, 0x01, 0, 4, 9,
                ],
                vec!["backup", "accepted", "refused"],
            ),
            ("signon", vec![3, 0x06, 3, 3, 0x02, 1], vec![]),
        ],
    );
}

#[test]
fn hmc_seeds() {
    let mut mkvol = vec![1u8, 28, 0x30, 0x10, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    mkvol.extend([0x40; 16]);
    let mut flash = mkvol.clone();
    flash.extend([
        6, 8, 0, 0, 0, 1, 0x30, 0x00, 0x30, 0x10, 0xFF, 40, 9, 2, 0x30, 0x00,
    ]);
    check_target(
        "hmc",
        zgate::fuzzing::hmc_reach,
        vec![
            (
                "mkvol_flash_tick",
                flash,
                vec!["decoded", "carried_out", "created", "tick"],
            ),
            (
                "backup_and_expire",
                [
                    vec![12, 4, 0, 1, 0x30, 0x00, 15, 24],
                    vec![0; 16],
                    vec![0, 0, 0, 0, 0, 0, 0, 1],
                ]
                .concat(),
                vec!["decoded"],
            ),
            (
                // FENCE domain 7 epoch 2, then EXPIRE_BACKUP from its epoch 1.
                "fence_then_older_epoch",
                [
                    vec![17, 16],
                    vec![0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 2],
                    vec![15, 24],
                    vec![0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 1],
                    vec![0, 0, 0, 0, 0, 0, 0, 1],
                ]
                .concat(),
                vec!["decoded", "carried_out", "fenced"],
            ),
            ("undecodable", vec![6, 3, 1, 2, 3], vec![]),
        ],
    );
}

#[test]
fn parsers_seeds() {
    let sample = |name: &str| {
        std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("testdata/peers")
                .join(name),
        )
        .unwrap()
    };
    let with = |which: u8, text: &[u8]| {
        let mut v = vec![which];
        v.extend_from_slice(text);
        v
    };
    check_target(
        "parsers",
        zgate::fuzzing::parsers_reach,
        vec![
            (
                "storage_image_id",
                with(0, b"IBM.2107-75FA120"),
                vec!["storage_image_id"],
            ),
            ("volume_id", with(1, b"3000"), vec!["volume_id"]),
            ("racf_name", with(2, b"hostusr"), vec!["racf_name"]),
            ("passticket", with(3, b"E9QEUZOI"), vec!["passticket"]),
            ("key", with(4, b"0123456789ABCDEX"), vec!["key"]),
            (
                "zos_config",
                with(5, &sample("zos.toml")),
                vec!["zos_config", "zos_system"],
            ),
            (
                "ztpf_config",
                with(6, &sample("ztpf.toml")),
                vec!["ztpf_config", "ztpf_system"],
            ),
            (
                "ds8k_config",
                with(7, &sample("ds8k.toml")),
                vec!["ds8k_config", "ds8k_system"],
            ),
            ("ebcdic", with(8, b"PLEX1"), vec!["ebcdic"]),
        ],
    );
}

#[test]
fn storage_link_seeds() {
    check_target(
        "storage_link",
        zgate::fuzzing::storage_link_reach,
        vec![
            (
                "ours",
                vec![0x05, 1, 0, 0x30, 1, 0x30, 2, 0x30, 3, 0x30, 0],
                vec!["built"],
            ),
            (
                "foreign",
                vec![0x01, 0, 0x80, 0x30, 1, 0x30, 1],
                vec!["foreign_volume_refused"],
            ),
        ],
    );
}

#[test]
fn engine_seeds() {
    use zgate::fuzzing::engine::{Op, TOUR_REACHES, tour};
    let encode = |ops: &[Op]| ops.iter().flat_map(Op::encode).collect::<Vec<u8>>();
    let backups = [Op::Schedule { minutes: 30 }, Op::Advance { minutes: 240 }];
    check_target(
        "engine",
        zgate::fuzzing::engine::engine_ops_reach,
        vec![
            ("tour", encode(&tour()), TOUR_REACHES.to_vec()),
            ("scheduled_backups", encode(&backups), vec!["three backups"]),
        ],
    );
}

/// The HA target: the frames of ha.md's examples and of every message kind, a full
/// copy, and rule inputs.
#[test]
fn ha_seeds() {
    use zgate::proto::ha::{HaBody, HaMessage, HaPurpose, HaRole, HaStart, Secret, WireRecord};
    if bless() {
        let mut seeds = Vec::new();
        let bodies = vec![
            HaBody::Hello {
                role: HaRole::STANDBY,
                purpose: HaPurpose::FOLLOW,
                epoch: 3,
                last_seq: 1200,
                last_epoch: 3,
                name: "b:9561".into(),
            },
            HaBody::HelloReply {
                status: zgate::proto::ReplyStatus::OK,
                role: HaRole::ACTIVE,
                epoch: 3,
                start: HaStart::RESUME,
                after: 1200,
                name: "a:9561".into(),
            },
            HaBody::Pair {
                user: "admin".into(),
                password: Secret::new("pass-phrase"),
                active: "a:9561".into(),
                key_check: [1; 32],
                ca_pem: "ca".into(),
                cert_pem: "cert".into(),
                key_pem: Secret::new("private-key"),
                csm_ca_pem: String::new(),
                csm_cert_pem: String::new(),
                csm_key_pem: Secret::new(""),
            },
            HaBody::Records {
                records: vec![WireRecord {
                    seq: 1201,
                    epoch: 3,
                    sealed: bytes::Bytes::from(zgate::store::seal(
                        &zgate::policy::engine::Record::SessionRemoved("FC1".into()),
                    )),
                }],
            },
            HaBody::Ack { seq: 1201 },
            HaBody::Heartbeat {
                role: HaRole::ACTIVE,
                epoch: 3,
                last_seq: 1201,
            },
        ];
        for (i, body) in bodies.into_iter().enumerate() {
            let reply = matches!(body, HaBody::HelloReply { .. });
            let name = format!(
                "ok_{}{}",
                body.name().to_ascii_lowercase(),
                if reply { "_reply" } else { "" }
            );
            let mut b = bytes::BytesMut::new();
            HaMessage {
                correlation: i as u32,
                body,
            }
            .encode(&mut b);
            let mut seed = vec![0u8];
            seed.extend_from_slice(&b);
            seeds.push((name, seed));
        }
        let copy = zgate::gateway::FullCopy {
            seq: 9,
            epochs: vec![(1, 1), (2, 5)],
            audit: vec![(2, b"12345678{}".to_vec())],
            state: b"12345678{}".to_vec(),
        };
        let mut seed = vec![1u8];
        seed.extend(zgate::gateway::ha::link::encode_copy(&copy));
        seeds.push(("ok_copy".into(), seed));
        seeds.push((
            "rules_taken".into(),
            vec![2, 10, 1, 3, 11, 1, 12, 2, 13, 2, 40, 20, 1, 1, 30, 2, 0],
        ));
        seeds.push((
            "rules_resume".into(),
            vec![2, 0, 0, 0, 60, 20, 1, 2, 50, 2, 0],
        ));
        write_seeds("ha", &seeds);
    }
    replay("ha", zgate::fuzzing::ha_reach, &|name| match name {
        "ok_copy" => vec!["copy"],
        "ok_pair" => vec!["message", "pair"],
        "rules_taken" => vec!["batch_taken"],
        "rules_resume" => vec!["resume"],
        n if n.starts_with("ok_") => vec!["message"],
        _ => Vec::new(),
    });
}
