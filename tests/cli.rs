//! The `zgate passticket` command line, run as a real process.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

fn zgate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_zgate"))
        .args(args)
        .env("RUST_LOG", "debug")
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).trim().to_string()
}

const KEY: &str = "E001193519561977";
const ENH_KEY: &str = "00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF";

#[test]
fn generate_legacy_known_answer() {
    let o = zgate(&[
        "passticket",
        "generate",
        "--key",
        KEY,
        "--user",
        "mikem",
        "--appl",
        "TSOSYS1",
        "--time",
        "1111111",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "AEPRRZ3S");
}

#[test]
fn generate_enhanced_both_types() {
    let base = [
        "passticket",
        "generate",
        "--key",
        ENH_KEY,
        "--user",
        "IBMUSER",
        "--appl",
        "IOSHMCSM",
        "--time",
        "1700000000",
        "--enhanced",
    ];
    assert_eq!(stdout(&zgate(&base)), "E9QEUZOI");
    let mut mixed = base.to_vec();
    mixed.extend(["--type", "mixed"]);
    assert_eq!(stdout(&zgate(&mixed)), "uRp3z1Dm");
}

#[test]
fn key_from_environment() {
    let o = Command::new(env!("CARGO_BIN_EXE_zgate"))
        .args([
            "passticket",
            "generate",
            "--key-env",
            "ZGATE_TEST_KEY",
            "--user",
            "MIKEM",
            "--appl",
            "TSOSYS1",
            "--time",
            "1111111",
        ])
        .env("ZGATE_TEST_KEY", KEY)
        .output()
        .unwrap();
    assert_eq!(stdout(&o), "AEPRRZ3S");
}

#[test]
fn generate_without_time_uses_now_and_verifies() {
    let o = zgate(&[
        "passticket",
        "generate",
        "--key",
        KEY,
        "--user",
        "HOSTUSR",
        "--appl",
        "IOSHMCSM",
    ]);
    let ticket = stdout(&o);
    assert_eq!(ticket.len(), 8);
    let v = zgate(&[
        "passticket",
        "verify",
        "--key",
        KEY,
        "--user",
        "HOSTUSR",
        "--appl",
        "IOSHMCSM",
        "--ticket",
        &ticket,
    ]);
    assert!(v.status.success(), "{} {}", stdout(&v), stderr(&v));
    assert!(
        stdout(&v).starts_with("valid: legacy ticket"),
        "{}",
        stdout(&v)
    );
}

#[test]
fn verify_exit_codes_and_reasons() {
    let verify = |time: &str, ticket: &str| {
        zgate(&[
            "passticket",
            "verify",
            "--key",
            KEY,
            "--user",
            "MIKEM",
            "--appl",
            "TSOSYS1",
            "--time",
            time,
            "--ticket",
            ticket,
        ])
    };
    let ok = verify("1111111", "AEPRRZ3S");
    assert_eq!(ok.status.code(), Some(0));
    let expired = verify("1111800", "AEPRRZ3S");
    assert_eq!(expired.status.code(), Some(1));
    assert_eq!(
        stdout(&expired),
        "refused: PassTicket expired (reason 0x0102)"
    );
    let future = verify("1110000", "AEPRRZ3S");
    assert_eq!(
        stdout(&future),
        "refused: PassTicket not yet valid (generated in the future) (reason 0x0103)"
    );
    let bad = verify("1111111", "AEPRRZ3T");
    assert_eq!(bad.status.code(), Some(1));
    assert_eq!(
        stdout(&bad),
        "refused: PassTicket not valid (reason 0x0101)"
    );
}

#[test]
fn bad_input_names_the_field_and_never_echoes_the_key() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["--key", "E00119351956197", "--user", "U", "--appl", "A"],
            "key: not hexadecimal (odd number of digits)",
        ),
        (
            &["--key", "E0011935195619", "--user", "U", "--appl", "A"],
            "key: 7 bytes, expected 8 (16 hex digits)",
        ),
        (
            &["--key", "X001193519561977", "--user", "U", "--appl", "A"],
            "key: not hexadecimal",
        ),
        (
            &["--key", KEY, "--user", "TOOLONGID", "--appl", "A"],
            "user: 9 characters, at most 8",
        ),
        (
            &["--key", KEY, "--user", "BAD!", "--appl", "A"],
            "user: character '!' not in A-Z 0-9 @ # $",
        ),
        (
            &["--key", KEY, "--user", "U", "--appl", "APPL.X"],
            "appl: character '.' not in A-Z 0-9 @ # $",
        ),
        (
            &["--key", "ABCD", "--user", "U", "--appl", "A", "--enhanced"],
            "key: 2 bytes, expected 32..=256",
        ),
        (
            &[
                "--key",
                ENH_KEY,
                "--user",
                "U",
                "--appl",
                "A",
                "--enhanced",
                "--type",
                "lower",
            ],
            "type: expected upper or mixed",
        ),
    ];
    for (args, expect) in cases {
        let mut full = vec!["passticket", "generate"];
        full.extend_from_slice(args);
        let o = zgate(&full);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = stderr(&o);
        assert!(err.contains(expect), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "one-line error: {err}");
        assert!(!err.contains(&args[1][1..]), "key echoed: {err}");
        assert!(stdout(&o).is_empty());
    }
    let o = zgate(&[
        "passticket",
        "verify",
        "--key",
        KEY,
        "--user",
        "U",
        "--appl",
        "A",
        "--ticket",
        "SHORT",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("ticket: 5 characters, expected 8"));
}

#[test]
fn peer_zos_config_errors_name_the_problem() {
    let dir = std::env::temp_dir().join(format!("zgate-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "listen = \"127.0.0.1:0\"\nnot_a_field = 1\n").unwrap();
    let o = zgate(&["peer", "zos", "--config", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("not_a_field"), "{}", stderr(&o));
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/peers/zos.toml");
    let o = Command::new(env!("CARGO_BIN_EXE_zgate"))
        .args(["peer", "zos", "--config", sample])
        .env_remove("ZGATE_ZOS_LEGACY_KEY")
        .env_remove("ZGATE_ZOS_ENHANCED_KEY")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("is not set"), "{}", stderr(&o));
    // A variable holding no key is named, and its value is not printed.
    for bad in ["NOT-HEX-AT-ALL!!", "0123"] {
        let o = Command::new(env!("CARGO_BIN_EXE_zgate"))
            .args(["peer", "zos", "--config", sample])
            .env("ZGATE_ZOS_LEGACY_KEY", bad)
            .env(
                "ZGATE_ZOS_ENHANCED_KEY",
                "00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF",
            )
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2));
        let err = stderr(&o);
        assert!(err.contains("ZGATE_ZOS_LEGACY_KEY"), "{err}");
        assert!(!err.contains(bad), "{err}");
    }
}

#[test]
fn ds8k_config_errors_name_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let cases = [
        (
            "image.toml",
            "listen = \"127.0.0.1:0\"\nimage = \"IBM.2107-75fa\"\n",
            "storage image id",
        ),
        (
            "range.toml",
            "listen = \"127.0.0.1:0\"\nimage = \"75FA120\"\n[[volumes]]\nids = \"30FF-3000\"\nckd_cylinders = 1\n",
            "FIRST-LAST",
        ),
        (
            "kind.toml",
            "listen = \"127.0.0.1:0\"\nimage = \"75FA120\"\n[[volumes]]\nids = \"3000\"\nckd_cylinders = 1\nfb_gib = 1\n",
            "one of ckd_cylinders or fb_gib",
        ),
        (
            "group.toml",
            "listen = \"127.0.0.1:0\"\nimage = \"75FA120\"\n[[volumes]]\nids = \"3000\"\nckd_cylinders = 1\n[[volumes]]\nids = \"3100\"\nfb_gib = 1\n",
            "ADDRESS_GROUP_TYPE",
        ),
        (
            "unknown.toml",
            "listen = \"127.0.0.1:0\"\nimage = \"75FA120\"\ncolour = 1\n",
            "colour",
        ),
    ];
    for (name, text, expect) in cases {
        let o = zgate(&["ds8k", "--config", write(name, text).to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(2), "{name}");
        assert!(stderr(&o).contains(expect), "{name}: {}", stderr(&o));
    }
}

#[test]
fn verify_takes_the_ticket_from_the_environment() {
    let o = Command::new(env!("CARGO_BIN_EXE_zgate"))
        .args([
            "passticket",
            "verify",
            "--key",
            KEY,
            "--user",
            "MIKEM",
            "--appl",
            "TSOSYS1",
            "--time",
            "1111111",
            "--ticket-env",
            "ZGATE_TEST_TICKET",
        ])
        .env("ZGATE_TEST_TICKET", "AEPRRZ3S")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).starts_with("valid"), "{}", stdout(&o));
}

/// `zgate passwd` reads the password from stdin (not a terminal here), prints an
/// argon2id PHC string, and never echoes the password.
#[test]
fn passwd_prints_an_argon2id_hash_from_stdin() {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_zgate"))
        .args(["passwd", "--memory-kib", "256", "--passes", "1"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"SECRET1\n").unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let phc = stdout(&o);
    assert!(phc.starts_with("$argon2id$v=19$m=256,t=1,p=1$"), "{phc}");
    assert!(!phc.contains("SECRET1") && !stderr(&o).contains("SECRET1"));
}

/// The operator console of `zgate peer zos`: three bad tickets revoke HOSTUSR, then
/// `RESUME HOSTUSR` on standard input lifts it (RACF's `ALTUSER … RESUME`).
#[test]
fn peer_operator_console_resumes_a_revoked_user() {
    use std::io::{BufRead, BufReader, Read, Write};
    use zgate::codec::fields::Ebcdic;
    use zgate::proto::logon::{Credential, CredentialKind, LogonRequest};
    use zgate::proto::{Control, zos::ZosMessage};

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("zos.toml");
    std::fs::write(
        &config,
        "listen = \"127.0.0.1:0\"\n[limits]\nfailed_logons_before_throttle = 0\n\
         [[users]]\nuser = \"HOSTUSR\"\n[[ptktdata]]\nname = \"IOSHMCSM\"\nlegacy_key_env = \"K\"\n",
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_zgate"))
        .args(["peer", "zos", "--config", config.to_str().unwrap()])
        .env("K", KEY)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let addr = line.trim().rsplit(' ').next().unwrap().to_string();
    for _ in 0..3 {
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        let logon = ZosMessage::control(
            1,
            Control::LogonRequest(LogonRequest {
                user: Ebcdic::new("HOSTUSR").unwrap(),
                appl: Ebcdic::new("IOSHMCSM").unwrap(),
                kind: CredentialKind::PASSTICKET,
                heartbeat_secs: 30,
                credential: Credential::new("AAAAAAAA").unwrap(),
            }),
        );
        let mut bytes = bytes::BytesMut::new();
        logon.encode(&mut bytes);
        s.write_all(&bytes).unwrap();
        let mut reply = [0u8; 44];
        s.read_exact(&mut reply).unwrap();
        assert_eq!(&reply[16..20], &[0, 8, 0x01, 0x00], "NOT_AUTHORIZED");
    }
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "RESUME HOSTUSR").unwrap();
    line.clear();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "RESUME HOSTUSR: resumed");
    writeln!(stdin, "RESUME HOSTUSR").unwrap();
    line.clear();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "RESUME HOSTUSR: not revoked");
    // A service holding keys writes no core dump.
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", child.id())).unwrap();
    let core = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .unwrap();
    assert_eq!(core.split_whitespace().nth(4), Some("0"), "{core}");
    let _ = child.kill();
    let _ = child.wait();
}

/// ds8k.md §3.5: `zgate ds8k` with a Metro Mirror complex prints both images'
/// listeners, and its operator console cuts and mends the link between them (what
/// a demo or a real-process test uses to fail a link).
#[test]
fn ds8k_operator_console_cuts_and_mends_the_link_between_images() {
    use std::io::{BufRead, BufReader, Write};
    let sample = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/peers/ds8k-metro-mirror.toml"
    ))
    .unwrap()
    .replace("127.0.0.1:1750", "127.0.0.1:0")
    .replace("127.0.0.1:1751", "127.0.0.1:0");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("mm.toml");
    std::fs::write(&config, sample).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_zgate"))
        .args(["ds8k", "--config", config.to_str().unwrap()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(line.contains("IBM.2107-75FA120"), "{line}");
    line.clear();
    out.read_line(&mut line).unwrap();
    assert!(
        line.contains("IBM.2107-75FA121") && line.contains("Metro Mirror partner"),
        "{line}"
    );
    let mut stdin = child.stdin.take().unwrap();
    let mut ask = |command: &str| {
        writeln!(stdin, "{command}").unwrap();
        let mut answer = String::new();
        out.read_line(&mut answer).unwrap();
        answer.trim().to_string()
    };
    assert_eq!(ask("LINK CUT 75FA121"), "LINK 75FA120-75FA121: down");
    assert_eq!(ask("link mend 75FA121"), "LINK 75FA120-75FA121: up");
    assert_eq!(
        ask("LINK CUT 75FA999"),
        "LINK: 75FA999 is not another image of this complex"
    );
    assert!(ask("HELP").contains("LINK CUT serial"));
    let _ = child.kill();
    let _ = child.wait();
}
