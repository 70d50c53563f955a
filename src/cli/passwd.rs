//! `zgate passwd`: prints the argon2id PHC hash of a password for the `password_hash`
//! key of a configuration (protocol-specs/configuration.md §2). The password comes
//! from a prompt (not echoed, asked twice), from standard input when that is not a
//! terminal, or from the environment variable `--password-env` names; never from the
//! command line.

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

use clap::Args;
use zeroize::Zeroizing;
use zgate::proto::logon::MAX_CREDENTIAL;
use zgate::sim::security::{default_hash_params, hash_password};

use super::exit;

#[derive(Debug, Args)]
pub struct PasswdArgs {
    /// Read the password from this environment variable instead of a prompt.
    #[arg(long)]
    password_env: Option<String>,
    /// argon2id memory cost in KiB (default 19456, argon2's and OWASP's minimum).
    #[arg(long)]
    memory_kib: Option<u32>,
    /// argon2id passes (default 2).
    #[arg(long)]
    passes: Option<u32>,
}

fn read_password(args: &PasswdArgs) -> Result<Zeroizing<String>, String> {
    if let Some(var) = &args.password_env {
        let value =
            std::env::var(var).map_err(|_| format!("environment variable {var} is not set"))?;
        return Ok(Zeroizing::new(value));
    }
    if std::io::stdin().is_terminal() {
        let first = Zeroizing::new(
            rpassword::prompt_password("password: ").map_err(|e| format!("prompt: {e}"))?,
        );
        let again = Zeroizing::new(
            rpassword::prompt_password("again: ").map_err(|e| format!("prompt: {e}"))?,
        );
        if first != again {
            return Err("the two passwords differ".into());
        }
        return Ok(first);
    }
    let mut line = Zeroizing::new(String::new());
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| format!("stdin: {e}"))?;
    Ok(Zeroizing::new(
        line.trim_end_matches(['\r', '\n']).to_string(),
    ))
}

/// Runs `zgate passwd`.
pub fn run(args: PasswdArgs) -> ExitCode {
    let password = match read_password(&args) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("zgate passwd: {e}");
            return ExitCode::from(exit::BAD_INPUT);
        }
    };
    let n = password.chars().count();
    if !(1..=MAX_CREDENTIAL).contains(&n) {
        eprintln!("zgate passwd: a password or passphrase has 1 to {MAX_CREDENTIAL} characters");
        return ExitCode::from(exit::BAD_INPUT);
    }
    let defaults = default_hash_params();
    let params = match argon2::Params::new(
        args.memory_kib.unwrap_or(defaults.m_cost()),
        args.passes.unwrap_or(defaults.t_cost()),
        defaults.p_cost(),
        None,
    ) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("zgate passwd: argon2 cost: {e}");
            return ExitCode::from(exit::BAD_INPUT);
        }
    };
    let mut salt = [0u8; 16];
    if let Err(e) = getrandom::getrandom(&mut salt) {
        eprintln!("zgate passwd: no randomness for the salt: {e}");
        return ExitCode::FAILURE;
    }
    match hash_password(&password, &salt, params) {
        Ok(phc) => {
            println!("{phc}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("zgate passwd: {e}");
            ExitCode::from(exit::BAD_INPUT)
        }
    }
}
