//! Security shared by the emulated host systems: a RACF-like user registry with
//! salted password hashes, PTKTDATA profiles whose keys come from the environment,
//! and the logon decision (protocol-specs/passticket.md §4). Pure.

use std::collections::{HashMap, HashSet};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::codec::fields::Ebcdic;
use crate::passticket::evaluator::{
    Evaluator, EvaluatorConfig, PtktProfile, RefusalReason, UserProfile,
};
use crate::passticket::{EnhancedKey, LegacyKey, PassTicket, RacfName, TicketType};
use crate::proto::VolumeRef;
use crate::proto::logon::{CredentialKind, LogonRequest};
use crate::proto::session::LogonDecision;

/// A RACF user of the emulated system.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// User ID.
    pub user: String,
    /// Default connect group.
    #[serde(default)]
    pub group: Option<String>,
    /// Password or passphrase as `salt$sha256hex(salt ‖ secret)`; never the secret itself.
    #[serde(default)]
    pub password_hash: Option<String>,
    /// `NOPASSWORD`: no PassTicket logons.
    #[serde(default)]
    pub protected: bool,
}

/// A PTKTDATA profile. Keys come from environment variables, never from the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileConfig {
    /// `APPL`, `APPL.GROUP`, `APPL.USERID` or `APPL.GROUP.USERID`.
    pub name: String,
    /// Environment variable holding the legacy key (16 hex digits).
    #[serde(default)]
    pub legacy_key_env: Option<String>,
    /// Environment variable holding the enhanced key (64–512 hex digits).
    #[serde(default)]
    pub enhanced_key_env: Option<String>,
    /// Enhanced ticket type.
    #[serde(default)]
    pub ticket_type: TicketType,
    /// RACF replay protection (default on).
    #[serde(default = "yes")]
    pub replay_protection: bool,
    /// Validity window, seconds either side.
    #[serde(default = "default_window")]
    pub window_secs: u32,
}

fn yes() -> bool {
    true
}

fn default_window() -> u32 {
    crate::passticket::evaluator::DEFAULT_WINDOW_SECS
}

pub(crate) fn default_revoke() -> u32 {
    3
}

/// Errors in the system configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SystemConfigError {
    /// A name or key is invalid.
    #[error("{0}")]
    Input(#[from] crate::passticket::InputError),
    /// A profile is invalid.
    #[error("{0}")]
    Profile(#[from] crate::passticket::evaluator::ProfileError),
    /// A text field does not fit.
    #[error("{0}")]
    Field(#[from] crate::codec::fields::EbcdicFieldError),
    /// An environment variable named for a key is missing.
    #[error("environment variable {0} (a PassTicket key) is not set")]
    MissingKeyEnv(String),
    /// An attached-volume range is not `SERIAL:FIRST-LAST`.
    #[error("attached volume range {0:?}: expected SERIAL:FIRST-LAST with hex volume ids")]
    BadVolumeRange(String),
    /// A password hash is not `salt$hex`.
    #[error("user {0}: password_hash must be salt$sha256hex")]
    BadPasswordHash(String),
}

/// Hashes a password for the configuration: `salt$sha256hex(salt ‖ password)`.
pub fn hash_password(salt: &str, password: &str) -> String {
    let digest = Sha256::new()
        .chain_update(salt.as_bytes())
        .chain_update(password.as_bytes())
        .finalize();
    format!("{salt}${}", hex::encode(digest))
}

/// Users, passwords and PTKTDATA profiles of one emulated system.
pub struct Security {
    racf: Evaluator,
    passwords: HashMap<RacfName, (String, [u8; 32])>,
}

impl Security {
    /// Builds the registry; `env` looks up the variables that hold the keys.
    pub fn new(
        revoke_after: u32,
        users: &[UserConfig],
        ptktdata: &[ProfileConfig],
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, SystemConfigError> {
        let mut racf = Evaluator::new(EvaluatorConfig {
            revoke_after,
            ..EvaluatorConfig::default()
        });
        let mut passwords = HashMap::new();
        for u in users {
            let user = RacfName::parse("user", &u.user)?;
            let default_group = u
                .group
                .as_deref()
                .map(|g| RacfName::parse("group", g))
                .transpose()?;
            racf.define_user(UserProfile {
                user,
                default_group,
                protected: u.protected,
            });
            if let Some(h) = &u.password_hash {
                let (salt, hexd) = h
                    .split_once('$')
                    .ok_or_else(|| SystemConfigError::BadPasswordHash(u.user.clone()))?;
                let mut digest = [0u8; 32];
                hex::decode_to_slice(hexd, &mut digest)
                    .map_err(|_| SystemConfigError::BadPasswordHash(u.user.clone()))?;
                passwords.insert(user, (salt.to_string(), digest));
            }
        }
        let key = |var: &Option<String>| -> Result<Option<zeroize::Zeroizing<String>>, SystemConfigError> {
            match var {
                None => Ok(None),
                Some(v) => env(v)
                    .map(|k| Some(zeroize::Zeroizing::new(k)))
                    .ok_or_else(|| SystemConfigError::MissingKeyEnv(v.clone())),
            }
        };
        for p in ptktdata {
            let mut profile = PtktProfile::new(&p.name);
            profile.replay_protection = p.replay_protection;
            profile.window_secs = p.window_secs;
            if let Some(k) = key(&p.legacy_key_env)? {
                profile.legacy_key = Some(LegacyKey::from_hex(k.trim())?);
            }
            if let Some(k) = key(&p.enhanced_key_env)? {
                profile.enhanced_key = Some((EnhancedKey::from_hex(k.trim())?, p.ticket_type));
            }
            racf.define_profile(profile)?;
        }
        Ok(Security { racf, passwords })
    }

    /// The RACF-like evaluator (to resume a user, inspect failure counts).
    pub fn racf(&mut self) -> &mut Evaluator {
        &mut self.racf
    }

    fn check_password(&self, user: &RacfName, secret: &str) -> bool {
        match self.passwords.get(user) {
            Some((salt, digest)) => {
                let got = Sha256::new()
                    .chain_update(salt.as_bytes())
                    .chain_update(secret.as_bytes())
                    .finalize();
                // Compare all 32 bytes whatever differs first.
                got.iter()
                    .zip(digest)
                    .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                    == 0
            }
            None => false,
        }
    }

    /// Decides a logon at `now_unix`: user status, then the PassTicket or password.
    /// Failures of either kind count toward revocation.
    pub fn logon(
        &mut self,
        req: &LogonRequest,
        now_unix: u64,
        domain: &Ebcdic<8>,
        system: &Ebcdic<8>,
    ) -> LogonDecision {
        let refuse = |r: RefusalReason| LogonDecision::Refuse {
            reason: r.code(),
            racf_rc: u16::from(r.racf_return_code()),
        };
        let (Ok(user), Ok(appl)) = (
            RacfName::parse("user", req.user.as_str()),
            RacfName::parse("appl", req.appl.as_str()),
        ) else {
            return refuse(RefusalReason::UnknownUser);
        };
        if let Err(r) = self.racf.check_user(&user) {
            return refuse(r.reason);
        }
        let outcome = match req.kind {
            CredentialKind::PASSTICKET => match PassTicket::parse(req.credential.expose()) {
                Ok(ticket) => self
                    .racf
                    .evaluate(&user, None, &appl, &ticket, now_unix)
                    .map(|_| ()),
                Err(_) => Err(self.racf.record_failure(&user, RefusalReason::BadTicket)),
            },
            _ => {
                if self.check_password(&user, req.credential.expose()) {
                    self.racf.record_success(&user);
                    Ok(())
                } else {
                    Err(self
                        .racf
                        .record_failure(&user, RefusalReason::PasswordInvalid))
                }
            }
        };
        match outcome {
            Ok(()) => LogonDecision::Accept {
                domain: domain.clone(),
                system: system.clone(),
            },
            Err(r) => refuse(r.reason),
        }
    }
}

/// True if a volume appears twice (by storage image and volume id).
pub fn has_duplicates<'a>(volumes: impl IntoIterator<Item = &'a VolumeRef>) -> bool {
    let mut seen = HashSet::new();
    volumes
        .into_iter()
        .any(|v| !seen.insert((v.storage.as_str(), v.volume)))
}
