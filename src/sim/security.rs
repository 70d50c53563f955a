//! Security shared by the emulated host systems: a RACF-like user registry with
//! salted password hashes, PTKTDATA profiles whose keys come from the environment,
//! and the logon decision (protocol-specs/passticket.md §4). Pure.

use std::collections::{HashMap, HashSet};

use serde::Deserialize;

use crate::codec::fields::Ebcdic;
use crate::passticket::evaluator::{
    Evaluator, EvaluatorConfig, PtktProfile, Refusal, RefusalReason, UserProfile,
};
use crate::passticket::{EnhancedKey, LegacyKey, PassTicket, RacfName, TicketType};
use crate::proto::VolumeRef;
use crate::proto::logon::{CredentialKind, LogonRequest, NOT_AUTHORIZED};
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
    /// Password or passphrase as an argon2id PHC string (`zgate passwd` prints one);
    /// never the secret itself.
    #[serde(default)]
    pub password_hash: Option<String>,
    /// RACF `NOPASSWORD` protected user: no password and no PassTicket logons (a
    /// protected user with a password hash is a configuration error).
    #[serde(default)]
    pub protected: bool,
    /// What the user may do beyond logging on and querying, as RACF FACILITY-class
    /// permits would grant it: `FLASH`, `SGC_BACKUP`, `HYPERSWAP` (z/OS only).
    #[serde(default)]
    pub permits: Vec<Permit>,
}

/// A permit to a class of requests (RACF FACILITY-style).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Permit {
    /// FlashCopy through the host (FLASH).
    Flash,
    /// Safeguarded Copy backups through the host (SGC_BACKUP).
    SgcBackup,
    /// HyperSwap load, enable, disable and planned swap (z/OS).
    Hyperswap,
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
    /// File holding the legacy key, readable by the service's user only (read by the
    /// listener, `crate::peer::secrets`; instead of `legacy_key_env`).
    #[serde(default)]
    pub legacy_key_file: Option<std::path::PathBuf>,
    /// File holding the enhanced key (instead of `enhanced_key_env`).
    #[serde(default)]
    pub enhanced_key_file: Option<std::path::PathBuf>,
    /// Enhanced ticket type.
    #[serde(default)]
    pub ticket_type: TicketType,
    /// RACF replay protection (default on).
    #[serde(default = "yes")]
    pub replay_protection: bool,
    /// Validity window of legacy tickets, seconds either side (RACF: ±600).
    #[serde(default = "default_window")]
    pub window_secs: u32,
    /// Validity window of enhanced tickets, seconds either side (RACF's default 60).
    #[serde(default = "default_enhanced_window")]
    pub enhanced_window_secs: u32,
}

fn default_enhanced_window() -> u32 {
    crate::passticket::evaluator::ENHANCED_DEFAULT_WINDOW_SECS
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
    /// A key variable holds no usable key (configuration.md §2).
    #[error("environment variable {var} (a PassTicket key): {source}")]
    BadKeyEnv {
        /// The variable.
        var: String,
        /// What is wrong with its value (never the value).
        source: crate::passticket::InputError,
    },
    /// An attached-volume range is not `SERIAL:FIRST-LAST`.
    #[error("attached volume range {0:?}: expected SERIAL:FIRST-LAST with hex volume ids")]
    BadVolumeRange(String),
    /// A password hash is not an argon2id PHC string.
    #[error("user {user}: password_hash {why}; make one with `zgate passwd`")]
    BadPasswordHash {
        /// The user.
        user: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A protected user (no password) was given a password.
    #[error("user {0} is protected (RACF NOPASSWORD) and cannot have a password_hash")]
    ProtectedWithPassword(String),
}

/// argon2id cost for `zgate passwd`: argon2's defaults (19 MiB, 2 passes, 1 lane),
/// the OWASP minimum for argon2id.
pub fn default_hash_params() -> argon2::Params {
    argon2::Params::default()
}

pub use crate::password::hash_password;

/// Checks that `phc` is an argon2id PHC string (the only format accepted).
fn parse_hash(user: &str, phc: &str) -> Result<String, SystemConfigError> {
    crate::password::check_phc(phc).map_err(|why| SystemConfigError::BadPasswordHash {
        user: user.to_string(),
        why,
    })?;
    Ok(phc.to_string())
}

/// One refused logon as the system records it (the client got only NOT_AUTHORIZED).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedLogon {
    /// The user ID as sent.
    pub user: String,
    /// The precise reason (passticket.md §4.5).
    pub reason: u16,
    /// This refusal revoked the user.
    pub revoked_now: bool,
    /// When, seconds since the epoch.
    pub time: u64,
}

/// Refused logons a system remembers (the oldest go first).
pub const REFUSALS_KEPT: usize = 256;

/// Users, passwords and PTKTDATA profiles of one emulated system.
pub struct Security {
    racf: Evaluator,
    /// argon2id PHC strings, checked at load.
    passwords: HashMap<RacfName, String>,
    /// The last [`REFUSALS_KEPT`] refused logons with their precise reasons.
    refusals: std::collections::VecDeque<RefusedLogon>,
    /// Seconds after which a revoked user is resumed by itself (0 = only by an
    /// operator's RESUME).
    resume_after_secs: u64,
    /// When each revoked user was revoked, seconds since the epoch.
    revoked_at: HashMap<RacfName, u64>,
    /// Each user's permits.
    permits: HashMap<RacfName, HashSet<Permit>>,
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
        let mut permits = HashMap::new();
        for u in users {
            let user = RacfName::parse("user", &u.user)?;
            let default_group = u
                .group
                .as_deref()
                .map(|g| RacfName::parse("group", g))
                .transpose()?;
            permits.insert(user, u.permits.iter().copied().collect());
            racf.define_user(UserProfile {
                user,
                default_group,
                protected: u.protected,
            });
            if let Some(h) = &u.password_hash {
                // spec: passticket.md §4.6: a protected user has no password.
                if u.protected {
                    return Err(SystemConfigError::ProtectedWithPassword(u.user.clone()));
                }
                passwords.insert(user, parse_hash(&u.user, h)?);
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
            profile.enhanced_window_secs = p.enhanced_window_secs;
            // configuration.md §2: a bad key names its variable (never its value).
            let named = |var: &Option<String>| {
                let var = var.clone().unwrap_or_default();
                move |source| SystemConfigError::BadKeyEnv { var, source }
            };
            if let Some(k) = key(&p.legacy_key_env)? {
                let parsed = LegacyKey::from_hex(k.trim()).map_err(named(&p.legacy_key_env))?;
                profile.legacy_key = Some(parsed);
            }
            if let Some(k) = key(&p.enhanced_key_env)? {
                let parsed = EnhancedKey::from_hex(k.trim()).map_err(named(&p.enhanced_key_env))?;
                profile.enhanced_key = Some((parsed, p.ticket_type));
            }
            racf.define_profile(profile)?;
        }
        Ok(Security {
            racf,
            passwords,
            refusals: std::collections::VecDeque::new(),
            resume_after_secs: 0,
            revoked_at: HashMap::new(),
            permits,
        })
    }

    /// True if `user` holds `permit`.
    pub fn permitted(&self, user: &Ebcdic<8>, permit: Permit) -> bool {
        RacfName::parse("user", user.as_str())
            .ok()
            .and_then(|u| self.permits.get(&u))
            .is_some_and(|p| p.contains(&permit))
    }

    /// Resume revoked users by themselves `secs` after their revocation (0 = never:
    /// only an operator's RESUME lifts it, as `ALTUSER … RESUME` does in RACF).
    pub fn set_resume_after(&mut self, secs: u64) {
        self.resume_after_secs = secs;
    }

    /// An operator's RESUME (RACF `ALTUSER userid RESUME`): true if `user` was revoked.
    pub fn resume(&mut self, user: &RacfName) -> bool {
        self.revoked_at.remove(user);
        let was_revoked = self.racf.is_revoked(user);
        self.racf.resume(user);
        was_revoked
    }

    /// The last refused logons, oldest first, with their precise reasons.
    pub fn refusals(&self) -> &std::collections::VecDeque<RefusedLogon> {
        &self.refusals
    }

    /// The RACF-like evaluator (to resume a user, inspect failure counts).
    pub fn racf(&mut self) -> &mut Evaluator {
        &mut self.racf
    }

    fn check_password(&self, user: &RacfName, secret: &str) -> bool {
        // Parsed at load; the cost parameters come from the string itself.
        self.passwords
            .get(user)
            .is_some_and(|phc| crate::password::verify(phc, secret))
    }

    /// Decides a logon at `now_unix`: user status, then the PassTicket or password.
    /// Failures of either kind count toward revocation.
    pub fn logon(
        &mut self,
        req: &LogonRequest,
        now_unix: u64,
        mono: Option<std::time::Instant>,
        domain: &Ebcdic<8>,
        system: &Ebcdic<8>,
    ) -> LogonDecision {
        // spec: passticket.md §4.7: one reason on the wire, the precise one kept.
        let refuse = |r: Refusal| LogonDecision::Refuse {
            reason: NOT_AUTHORIZED,
            racf_rc: 8,
            precise: r.reason.code(),
            revoked_now: r.revoked_now,
        };
        let unknown = Refusal {
            reason: RefusalReason::UnknownUser,
            failures: 0,
            revoked_now: false,
        };
        let (Ok(user), Ok(appl)) = (
            RacfName::parse("user", req.user.as_str()),
            RacfName::parse("appl", req.appl.as_str()),
        ) else {
            return self.refused(req, now_unix, refuse(unknown));
        };
        // spec: passticket.md §4.3: a timed resume, when configured.
        if self.resume_after_secs > 0
            && let Some(&at) = self.revoked_at.get(&user)
            && now_unix >= at.saturating_add(self.resume_after_secs)
        {
            self.resume(&user);
            tracing::warn!(%user, "revoked user resumed after resume_after_secs");
        }
        if let Err(r) = self.racf.check_user(&user) {
            return self.refused(req, now_unix, refuse(r));
        }
        let outcome = match req.kind {
            CredentialKind::PASSTICKET => match PassTicket::parse(req.credential.expose()) {
                Ok(ticket) => self
                    .racf
                    .evaluate_at(&user, None, &appl, &ticket, now_unix, mono)
                    .map(|_| ()),
                Err(_) => Err(self.racf.record_failure(&user, RefusalReason::BadTicket)),
            },
            // spec: passticket.md §4.6: a protected user never logs on with a password.
            _ if self.racf.is_protected(&user) => Err(self
                .racf
                .record_failure(&user, RefusalReason::ProtectedUser)),
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
            Err(r) => self.refused(req, now_unix, refuse(r)),
        }
    }

    /// Records a refusal (bounded) and returns it.
    fn refused(
        &mut self,
        req: &LogonRequest,
        now_unix: u64,
        decision: LogonDecision,
    ) -> LogonDecision {
        if let LogonDecision::Refuse {
            precise,
            revoked_now,
            ..
        } = decision
        {
            if revoked_now && let Ok(user) = RacfName::parse("user", req.user.as_str()) {
                self.revoked_at.insert(user, now_unix);
            }
            if self.refusals.len() == REFUSALS_KEPT {
                self.refusals.pop_front();
            }
            self.refusals.push_back(RefusedLogon {
                user: req.user.to_string(),
                reason: precise,
                revoked_now,
                time: now_unix,
            });
        }
        decision
    }
}

/// True if a volume appears twice (by storage image and volume id).
pub fn has_duplicates<'a>(volumes: impl IntoIterator<Item = &'a VolumeRef>) -> bool {
    let mut seen = HashSet::new();
    volumes
        .into_iter()
        .any(|v| !seen.insert((v.storage.as_str(), v.volume)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> argon2::Params {
        argon2::Params::new(256, 1, 1, None).unwrap()
    }

    fn user(name: &str, hash: Option<String>, protected: bool) -> UserConfig {
        UserConfig {
            user: name.into(),
            group: None,
            password_hash: hash,
            protected,
            permits: Vec::new(),
        }
    }

    fn logon(security: &mut Security, user: &str, password: &str) -> LogonDecision {
        let request = LogonRequest {
            user: Ebcdic::new(user).unwrap(),
            appl: Ebcdic::new("IOSHMCSM").unwrap(),
            kind: CredentialKind::PASSWORD,
            heartbeat_secs: 30,
            credential: crate::proto::logon::Credential::new(password).unwrap(),
        };
        let name = Ebcdic::new("X").unwrap();
        security.logon(&request, 0, None, &name, &name)
    }

    #[test]
    fn argon2id_hashes_verify_and_salts_differ() {
        let a = hash_password("SECRET1", b"salt-one-16bytes", cheap()).unwrap();
        let b = hash_password("SECRET1", b"salt-two-16bytes", cheap()).unwrap();
        assert!(a.starts_with("$argon2id$v=19$m=256,t=1,p=1$"));
        assert_ne!(a, b, "a random salt per user gives different hashes");
        let mut s = Security::new(3, &[user("OPER1", Some(a), false)], &[], |_| None).unwrap();
        assert!(matches!(
            logon(&mut s, "OPER1", "SECRET1"),
            LogonDecision::Accept { .. }
        ));
        assert!(matches!(
            logon(&mut s, "OPER1", "SECRET2"),
            LogonDecision::Refuse { .. }
        ));
    }

    #[test]
    fn old_sha256_hashes_are_refused_with_a_clear_message() {
        let old = "s4lt$4591f64ef90726675e53d913bd359a8d366eba8615c45f16e99e4c1327143e22";
        let err = Security::new(3, &[user("OPER1", Some(old.into()), false)], &[], |_| None)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("old salted SHA-256 format"), "{err}");
        assert!(err.contains("zgate passwd"), "{err}");
        let garbage = Security::new(
            3,
            &[user("OPER1", Some("$nope".into()), false)],
            &[],
            |_| None,
        );
        assert!(garbage.is_err());
    }

    /// spec: passticket.md §4.6: a protected user has no password, in the file or at logon.
    #[test]
    fn protected_users_cannot_have_or_use_a_password() {
        let hash = hash_password("SECRET1", b"salt-one-16bytes", cheap()).unwrap();
        let err = Security::new(3, &[user("HOSTUSR", Some(hash), true)], &[], |_| None)
            .err()
            .unwrap();
        assert!(matches!(err, SystemConfigError::ProtectedWithPassword(_)));
        let mut s = Security::new(3, &[user("HOSTUSR", None, true)], &[], |_| None).unwrap();
        assert!(matches!(
            logon(&mut s, "HOSTUSR", "SECRET1"),
            LogonDecision::Refuse { .. }
        ));
    }

    /// spec: passticket.md §4.3: with `resume_after_secs`, a revoked user comes back
    /// by itself; without it only an operator's RESUME lifts the revocation.
    #[test]
    fn a_timed_resume_lifts_a_revocation() {
        let hash = hash_password("SECRET1", b"salt-one-16bytes", cheap()).unwrap();
        let mut s = Security::new(3, &[user("OPER1", Some(hash), false)], &[], |_| None).unwrap();
        s.set_resume_after(300);
        let at = |s: &mut Security, t: u64, pw: &str| {
            let request = LogonRequest {
                user: Ebcdic::new("OPER1").unwrap(),
                appl: Ebcdic::new("IOSHMCSM").unwrap(),
                kind: CredentialKind::PASSWORD,
                heartbeat_secs: 30,
                credential: crate::proto::logon::Credential::new(pw).unwrap(),
            };
            let name = Ebcdic::new("X").unwrap();
            matches!(
                s.logon(&request, t, None, &name, &name),
                LogonDecision::Accept { .. }
            )
        };
        for t in 0..3 {
            assert!(!at(&mut s, t, "WRONG"));
        }
        assert!(s.refusals().back().unwrap().revoked_now);
        assert!(!at(&mut s, 100, "SECRET1"), "still revoked");
        assert!(at(&mut s, 302, "SECRET1"), "resumed after 300 s");
    }
}
