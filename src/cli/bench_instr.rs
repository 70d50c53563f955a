//! `zgate bench instructions`: instruction counts of the pure computations, each
//! beside a baseline, counted by valgrind's callgrind: the same figures from run to
//! run on any machine, whatever else it runs.
//!
//! Each workload runs in a child process (`zgate bench instr-run <name> <side> <n>`)
//! under `valgrind --tool=callgrind`, `n` and `2n` times; the difference of the two
//! totals divided by `n` is the cost of one operation without the process's start.
//! The baseline of each is the part of the work that cannot be avoided (the cipher
//! blocks a PassTicket algorithm prescribes, the frame split every protocol needs,
//! the JSON a record is, the reply a decision ends in), so the ratio says what
//! zgate adds.

use std::hint::black_box;
use std::process::{Command, ExitCode};

use bytes::BytesMut;
use clap::Args;
use tokio_util::codec::Decoder;

#[derive(Debug, Args)]
pub struct InstructionsArgs {
    /// Operations per measurement (the larger, the less the start-up matters).
    #[arg(long, default_value_t = 2_000)]
    iterations: u64,
}

#[derive(Debug, Args)]
pub struct InstrRunArgs {
    /// The workload.
    workload: String,
    /// `zgate` or `baseline`.
    side: String,
    /// How many operations.
    count: u64,
}

/// The workloads: name, what zgate does, what the baseline does.
pub(super) const WORKLOADS: [(&str, &str, &str); 5] = [
    (
        "passticket-legacy",
        "LegacyGenerator::generate",
        "8 DES blocks (the algorithm's)",
    ),
    (
        "passticket-enhanced",
        "EnhancedGenerator::generate",
        "7 HMAC-SHA-512 (the algorithm's)",
    ),
    (
        "frame-decode",
        "z/OS FLASH request: frame + typed message",
        "the frame split alone",
    ),
    (
        "record-seal",
        "store::seal of a 16-copy-set session",
        "serde_json of the same record",
    ),
    (
        "engine-decision",
        "a Monitor's Flash, refused and audited",
        "serde_json of the reply",
    ),
];

pub fn instructions(args: InstructionsArgs) -> ExitCode {
    match measure_all(args.iterations) {
        Ok(rows) => {
            print_table(&rows);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("zgate bench instructions: {e}");
            ExitCode::FAILURE
        }
    }
}

/// One workload's figures: instructions per operation for zgate and the baseline.
pub(super) struct Row {
    pub(super) name: &'static str,
    pub(super) what: &'static str,
    pub(super) baseline: &'static str,
    pub(super) zgate: f64,
    pub(super) base: f64,
}

impl Row {
    pub(super) fn ratio(&self) -> f64 {
        self.zgate / self.base.max(1.0)
    }
}

pub(super) fn measure_all(iterations: u64) -> Result<Vec<Row>, String> {
    let probe = Command::new("valgrind").arg("--version").output();
    if !probe.is_ok_and(|o| o.status.success()) {
        return Err("valgrind is not installed (Debian: apt-get install valgrind)".into());
    }
    WORKLOADS
        .iter()
        .map(|&(name, what, baseline)| {
            Ok(Row {
                name,
                what,
                baseline,
                zgate: per_operation(name, "zgate", iterations)?,
                base: per_operation(name, "baseline", iterations)?,
            })
        })
        .collect()
}

fn print_table(rows: &[Row]) {
    println!(
        "{:<20} {:>14} {:>14} {:>7}  zgate / baseline",
        "workload", "zgate Ir/op", "baseline Ir/op", "ratio"
    );
    for r in rows {
        println!(
            "{:<20} {:>14.0} {:>14.0} {:>7.2}  {} / {}",
            r.name,
            r.zgate,
            r.base,
            r.ratio(),
            r.what,
            r.baseline
        );
    }
}

/// Instructions of one operation: callgrind totals at `n` and `2n`, differenced.
fn per_operation(workload: &str, side: &str, n: u64) -> Result<f64, String> {
    let once = collected(workload, side, n)?;
    let twice = collected(workload, side, 2 * n)?;
    Ok(twice.saturating_sub(once) as f64 / n.max(1) as f64)
}

fn collected(workload: &str, side: &str, n: u64) -> Result<u64, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let output = Command::new("valgrind")
        .args(["--tool=callgrind", "--callgrind-out-file=/dev/null"])
        .arg(exe)
        .args(["bench", "instr-run", workload, side, &n.to_string()])
        .output()
        .map_err(|e| format!("cannot run valgrind: {e}"))?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        return Err(format!("{workload} {side}: {}", stderr.trim()));
    }
    stderr
        .lines()
        .find_map(|l| {
            l.split_once("Collected :")
                .map(|(_, n)| n.trim().to_owned())
        })
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("{workload} {side}: no instruction count from callgrind"))
}

/// The child: runs one side of one workload `count` times.
pub fn instr_run(args: InstrRunArgs) -> ExitCode {
    match run_workload(&args.workload, &args.side, args.count) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("zgate bench instr-run: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run_workload(workload: &str, side: &str, count: u64) -> Result<(), String> {
    let zgate = match side {
        "zgate" => true,
        "baseline" => false,
        other => return Err(format!("side '{other}' is neither zgate nor baseline")),
    };
    match workload {
        "passticket-legacy" => legacy(zgate, count),
        "passticket-enhanced" => enhanced(zgate, count),
        "frame-decode" => frame_decode(zgate, count),
        "record-seal" => record_seal(zgate, count),
        "engine-decision" => engine_decision(zgate, count),
        other => Err(format!("no workload '{other}'")),
    }
}

fn names() -> Result<(zgate::passticket::RacfName, zgate::passticket::RacfName), String> {
    let user = zgate::passticket::RacfName::parse("user", "CSMUSER").map_err(|e| e.to_string())?;
    let appl = zgate::passticket::RacfName::parse("appl", "IOSHMCSM").map_err(|e| e.to_string())?;
    Ok((user, appl))
}

fn legacy(zgate: bool, count: u64) -> Result<(), String> {
    use des::cipher::{Array, BlockCipherEncrypt, KeyInit};
    let key =
        zgate::passticket::LegacyKey::from_hex("0123456789ABCDEF").map_err(|e| e.to_string())?;
    let (user, appl) = names()?;
    if zgate {
        let generator = zgate::passticket::LegacyGenerator::new(&key);
        for t in 0..count {
            black_box(generator.generate(&user, &appl, black_box(1_700_000_000 + t)));
        }
    } else {
        // The same key's bytes (key types keep theirs to themselves).
        let raw = 0x0123_4567_89AB_CDEFu64.to_be_bytes();
        let cipher = des::Des::new(&Array::from(raw));
        for t in 0..count {
            let mut block = Array::from(black_box(t).to_be_bytes());
            for _ in 0..8 {
                cipher.encrypt_block(&mut block);
            }
            black_box(block);
        }
    }
    Ok(())
}

fn enhanced(zgate: bool, count: u64) -> Result<(), String> {
    use hmac::{Hmac, KeyInit, Mac};
    let key_hex = "00112233445566778899AABBCCDDEEFF".repeat(2);
    let key = zgate::passticket::EnhancedKey::from_hex(&key_hex).map_err(|e| e.to_string())?;
    let (user, appl) = names()?;
    if zgate {
        let generator =
            zgate::passticket::EnhancedGenerator::new(&key, zgate::passticket::TicketType::Upper);
        for t in 0..count {
            black_box(generator.generate(&user, &appl, black_box(1_700_000_000 + t)));
        }
    } else {
        let raw = hex::decode(&key_hex).map_err(|e| e.to_string())?;
        let keyed =
            <Hmac<sha2::Sha512> as KeyInit>::new_from_slice(&raw).map_err(|e| e.to_string())?;
        for t in 0..count {
            let mut last = [0u8; 64];
            for round in 0..7u8 {
                let mut mac = keyed.clone();
                mac.update(&black_box(t).to_be_bytes()[..4]);
                mac.update(&[round]);
                mac.update(&last[..16]);
                last = mac.finalize().into_bytes().into();
            }
            black_box(last);
        }
    }
    Ok(())
}

fn frame_decode(zgate: bool, count: u64) -> Result<(), String> {
    let bytes = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/zos/ok_flash_request.bin"
    ))
    .map_err(|e| format!("testdata/zos/ok_flash_request.bin: {e}"))?;
    let mut codec = zgate::codec::frame::FrameCodec::default();
    for _ in 0..count {
        let mut buf = BytesMut::from(black_box(&bytes[..]));
        let frame = codec
            .decode(&mut buf)
            .map_err(|e| e.to_string())?
            .ok_or("the golden frame is incomplete")?;
        if zgate {
            black_box(zgate::proto::zos::ZosMessage::decode(&frame).map_err(|e| e.to_string())?);
        } else {
            black_box(frame);
        }
    }
    Ok(())
}

fn record_seal(zgate: bool, count: u64) -> Result<(), String> {
    use zgate::ds8k::VolumeId;
    use zgate::policy::inventory::VolumeRef;
    use zgate::policy::session::{CopySet, Session};
    let mut session = Session::new(
        "FC1".into(),
        zgate::policy::SessionType::Fc,
        "bench".into(),
        0,
    );
    let volume = |v: u16| VolumeRef {
        serial: "75FA120".into(),
        volume: VolumeId(v),
    };
    session.copy_sets = (0..16)
        .map(|i| CopySet {
            h1: volume(0x3000 + i),
            partner: Some(volume(0x3100 + i)),
        })
        .collect::<Vec<_>>()
        .into();
    let record = zgate::policy::engine::Record::Session(session);
    for _ in 0..count {
        if zgate {
            black_box(zgate::store::seal(black_box(&record)));
        } else {
            black_box(serde_json::to_vec(black_box(&record)).map_err(|e| e.to_string())?);
        }
    }
    Ok(())
}

fn engine_decision(zgate: bool, count: u64) -> Result<(), String> {
    use zgate::policy::SessionType;
    use zgate::policy::access::Role;
    use zgate::policy::engine::{Command, Engine, EngineConfig};
    use zgate::policy::session::SessionCommand;
    // A well-formed hash; nobody logs on here.
    const HASH: &str = "$argon2id$v=19$m=256,t=1,p=1$dPSvPsnwvszeWFQcHoNUtQ$VkHyf3shwuBN9RYKSA5exsDDhoO9YAOy2Lqxr89Cn1o";
    let now = 1_795_564_800_000;
    let mut engine = Engine::new(EngineConfig::default());
    engine.bootstrap_admin("admin", HASH.into(), now);
    for command in [
        Command::CreateUser {
            name: "mon".into(),
            role: Role::Monitor,
            grant: None,
            password_hash: HASH.into(),
        },
        Command::CreateSession {
            name: "FC1".into(),
            kind: SessionType::Fc,
            description: String::new(),
        },
    ] {
        engine.handle_command("admin", command, now);
    }
    let flash = Command::Run {
        session: "FC1".into(),
        command: SessionCommand::Flash,
    };
    let reply = engine.handle_command("mon", flash.clone(), now);
    for _ in 0..count {
        if zgate {
            black_box(engine.handle_command("mon", black_box(flash.clone()), now));
            // What the decision wrote (its audit record) leaves the engine.
            while engine.poll_record().is_some() {}
            while engine.poll_console().is_some() {}
            while engine.poll_finished().is_some() {}
        } else {
            black_box(serde_json::to_vec(&black_box(&reply).message).map_err(|e| e.to_string())?);
        }
    }
    Ok(())
}
