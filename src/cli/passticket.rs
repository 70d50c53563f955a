//! `zgate passticket generate|verify`.

use std::process::ExitCode;
use std::time::SystemTime;

use clap::{Args, Subcommand};
use zgate::passticket::evaluator::{Evaluator, EvaluatorConfig, PtktProfile, UserProfile};
use zgate::passticket::{
    EnhancedGenerator, EnhancedKey, InputError, LegacyGenerator, LegacyKey, PassTicket, RacfName,
    TicketType, unix_seconds,
};

use super::exit;

#[derive(Debug, Subcommand)]
pub enum PassticketCommand {
    /// Print the PassTicket for a key, user ID, application name and time.
    Generate(KeyArgs),
    /// Check a PassTicket as RACF would (exit 0 valid, 1 refused with the reason, 2 bad input).
    Verify {
        #[command(flatten)]
        key: KeyArgs,
        /// The ticket to check. Prefer --ticket-env: a live ticket on the command line
        /// is visible to other local users.
        #[arg(
            long,
            required_unless_present = "ticket_env",
            conflicts_with = "ticket_env"
        )]
        ticket: Option<String>,
        /// Name of an environment variable that holds the ticket.
        #[arg(long)]
        ticket_env: Option<String>,
        /// Validity window, seconds either side of --time (1..=600; default RACF's:
        /// 600 for legacy tickets, 60 for enhanced ones).
        #[arg(long)]
        window: Option<u32>,
    },
}

#[derive(Debug, Args)]
pub struct KeyArgs {
    /// Key in hex: 16 digits (legacy DES) or 64 to 512 digits (enhanced HMAC).
    /// Prefer --key-env: a key on the command line is visible to other local users.
    #[arg(long, required_unless_present = "key_env", conflicts_with = "key_env")]
    key: Option<String>,
    /// Name of an environment variable that holds the key in hex.
    #[arg(long)]
    key_env: Option<String>,
    /// RACF user ID (1-8 of A-Z 0-9 @ # $; folded to upper case).
    #[arg(long)]
    user: String,
    /// Application name, the PTKTDATA profile name (for example IOSHMCSM).
    #[arg(long)]
    appl: String,
    /// Seconds since 1970-01-01 UTC (default: now). For verify, the evaluator's clock.
    #[arg(long)]
    time: Option<u64>,
    /// Use the enhanced (HMAC-SHA-512) algorithm.
    #[arg(long)]
    enhanced: bool,
    /// Enhanced ticket type.
    #[arg(
        long = "type",
        value_name = "upper|mixed",
        default_value = "upper",
        requires = "enhanced"
    )]
    ticket_type: String,
}

/// The parsed, validated inputs.
struct Inputs {
    user: RacfName,
    appl: RacfName,
    time: u64,
    key: Key,
}

enum Key {
    Legacy(LegacyKey),
    Enhanced(EnhancedKey, TicketType),
}

impl KeyArgs {
    fn parse(&self) -> Result<Inputs, InputError> {
        let user = RacfName::parse("user", &self.user)?;
        let appl = RacfName::parse("appl", &self.appl)?;
        let time = match self.time {
            Some(t) => t,
            None => unix_seconds(SystemTime::now())?,
        };
        let hex = match (&self.key, &self.key_env) {
            (Some(k), _) => zeroize::Zeroizing::new(k.clone()),
            (None, Some(var)) => {
                zeroize::Zeroizing::new(std::env::var(var).map_err(|_| InputError::KeyNotHex {
                    field: "key-env",
                    problem: format!("environment variable {var} is not set or not UTF-8"),
                })?)
            }
            (None, None) => {
                return Err(InputError::KeyNotHex {
                    field: "key",
                    problem: "no key given".into(),
                });
            }
        };
        let key = if self.enhanced {
            Key::Enhanced(
                EnhancedKey::from_hex(hex.trim())?,
                self.ticket_type.parse()?,
            )
        } else {
            Key::Legacy(LegacyKey::from_hex(hex.trim())?)
        };
        Ok(Inputs {
            user,
            appl,
            time,
            key,
        })
    }
}

pub fn run(cmd: PassticketCommand) -> ExitCode {
    match cmd {
        PassticketCommand::Generate(args) => match args.parse() {
            Ok(inputs) => {
                let ticket = match &inputs.key {
                    Key::Legacy(k) => {
                        LegacyGenerator::new(k).generate(&inputs.user, &inputs.appl, inputs.time)
                    }
                    Key::Enhanced(k, t) => EnhancedGenerator::new(k, *t).generate(
                        &inputs.user,
                        &inputs.appl,
                        inputs.time,
                    ),
                };
                println!("{ticket}");
                ExitCode::SUCCESS
            }
            Err(e) => bad_input(&e),
        },
        PassticketCommand::Verify {
            key,
            ticket,
            ticket_env,
            window,
        } => {
            let inputs = match key.parse() {
                Ok(i) => i,
                Err(e) => return bad_input(&e),
            };
            let ticket = match (ticket, ticket_env) {
                (Some(t), _) => t,
                (None, Some(var)) => match std::env::var(&var) {
                    Ok(t) => t,
                    Err(_) => {
                        eprintln!("zgate: ticket: environment variable {var} is not set");
                        return ExitCode::from(exit::BAD_INPUT);
                    }
                },
                (None, None) => unreachable!("clap requires --ticket or --ticket-env"),
            };
            let ticket = match PassTicket::parse(&ticket) {
                Ok(t) => t,
                Err(e) => return bad_input(&e),
            };
            verify(inputs, ticket, window)
        }
    }
}

fn verify(inputs: Inputs, ticket: PassTicket, window: Option<u32>) -> ExitCode {
    let mut profile = PtktProfile::new(inputs.appl.as_str());
    if let Some(w) = window {
        profile.window_secs = w;
        profile.enhanced_window_secs = w;
    }
    match inputs.key {
        Key::Legacy(k) => profile.legacy_key = Some(k),
        Key::Enhanced(k, t) => profile.enhanced_key = Some((k, t)),
    }
    let mut evaluator = Evaluator::new(EvaluatorConfig::default());
    if let Err(e) = evaluator.define_profile(profile) {
        eprintln!("zgate: {e}");
        return ExitCode::from(exit::BAD_INPUT);
    }
    evaluator.define_user(UserProfile {
        user: inputs.user,
        default_group: None,
        protected: false,
    });
    match evaluator.evaluate(&inputs.user, None, &inputs.appl, &ticket, inputs.time) {
        Ok(ok) => {
            println!(
                "valid: {} ticket, profile {}, skew {:+} s",
                ok.algorithm, ok.profile, ok.skew_secs
            );
            ExitCode::SUCCESS
        }
        Err(refusal) => {
            println!("refused: {refusal}");
            ExitCode::from(exit::REFUSED)
        }
    }
}

fn bad_input(e: &InputError) -> ExitCode {
    eprintln!("zgate: {e}");
    ExitCode::from(exit::BAD_INPUT)
}
