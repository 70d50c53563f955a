//! RACF-style PassTicket evaluation, for the emulated z/OS and z/TPF peers.
//!
//! Spec: protocol-specs/passticket.md §4. What this models of RACF:
//!
//! * **PTKTDATA profiles** named `APPL`, `APPL.GROUP`, `APPL.USERID` or
//!   `APPL.GROUP.USERID`, each with a legacy key, an enhanced key, or both, a replay
//!   setting and a validity window. The most specific qualified profile that exists is
//!   tried first, then the unqualified `APPL` profile.
//! * **Time window**: a ticket is valid when the time it encodes is within ±window
//!   seconds of the evaluator's clock (inclusive; 600 s by default, as RACF documents
//!   for legacy tickets).
//! * **Replay protection**: a ticket accepted once for a user and application is
//!   refused if presented again while it could still validate, unless the profile
//!   allows replay (RACF: `APPLDATA('NO REPLAY PROTECTION')`).
//! * **Revocation**: consecutive failed attempts count per user, as failed passwords
//!   do (`SETROPTS PASSWORD(REVOKE(n))`); at `revoke_after` the user is revoked and
//!   every later logon is refused until [`Evaluator::resume`]. A success resets the count.
//! * **Protected users** (`NOPASSWORD`) cannot log on with a PassTicket.
//!
//! Tickets are checked by decoding them to their time (one pass, 8 DES blocks or 7
//! HMACs per key tried), not by generating every ticket of the window.
//!
//! The evaluator is pure: the caller passes the time, and it does no I/O and no logging.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fmt;

use super::enhanced::{PreparedPair, UPPER_TIME_BITS};
use super::{
    Algorithm, EnhancedGenerator, EnhancedKey, InputError, LegacyGenerator, LegacyKey, PassTicket,
    RacfName, TicketType,
};

/// RACF's window for enhanced PassTickets: 1 minute either side by default
/// (passticket.md §4.2, CICS6).
pub const ENHANCED_DEFAULT_WINDOW_SECS: u32 = 60;

/// Default validity window, seconds either side of the evaluator's clock; RACF's
/// fixed ±10 minutes for legacy tickets, and the largest window a profile may set.
pub const DEFAULT_WINDOW_SECS: u32 = 600;

/// Tunables that are not per profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvaluatorConfig {
    /// Consecutive failed attempts that revoke a user (RACF `PASSWORD(REVOKE(n))`). 0 = never.
    pub revoke_after: u32,
    /// Most replay-cache entries held at once; beyond it logons are refused, not let through.
    pub replay_capacity: usize,
    /// A ticket that decodes to a time further than this from now is called a bad
    /// ticket (wrong key, mistyped) rather than an expired or future one.
    pub plausible_skew_secs: u64,
}

impl Default for EvaluatorConfig {
    fn default() -> Self {
        EvaluatorConfig {
            revoke_after: 3,
            replay_capacity: 100_000,
            plausible_skew_secs: 86_400,
        }
    }
}

/// A PTKTDATA profile as an administrator defines it.
#[derive(Debug, Clone)]
pub struct PtktProfile {
    /// `APPL`, `APPL.GROUP`, `APPL.USERID` or `APPL.GROUP.USERID`.
    pub name: String,
    /// Legacy secured signon key (`SSIGNON(KEYMASKED(...))`).
    pub legacy_key: Option<LegacyKey>,
    /// Enhanced key and the ticket type it is used with (`SSIGNON(EPTKEYLABEL(...))`).
    pub enhanced_key: Option<(EnhancedKey, TicketType)>,
    /// Refuse a second use of the same ticket (RACF's default).
    pub replay_protection: bool,
    /// Validity of legacy tickets, seconds either side of now (1..=600; RACF ±600).
    pub window_secs: u32,
    /// Validity of enhanced tickets, seconds either side of now (1..=600; RACF's
    /// default is 60).
    pub enhanced_window_secs: u32,
}

impl PtktProfile {
    /// A profile named `name` with replay protection on and the default window, and no key yet.
    pub fn new(name: &str) -> Self {
        PtktProfile {
            name: name.to_string(),
            legacy_key: None,
            enhanced_key: None,
            replay_protection: true,
            window_secs: DEFAULT_WINDOW_SECS,
            enhanced_window_secs: ENHANCED_DEFAULT_WINDOW_SECS,
        }
    }
}

/// Errors in a profile definition.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProfileError {
    /// The name is not 1 to 3 dot-separated RACF names.
    #[error("profile name {name:?}: {source}")]
    BadName {
        /// The name given.
        name: String,
        /// Which part is wrong.
        source: InputError,
    },
    /// Too many qualifiers.
    #[error("profile name {0:?}: at most APPL.GROUP.USERID")]
    TooManyQualifiers(String),
    /// Neither key given.
    #[error("profile {0}: needs a legacy key, an enhanced key, or both")]
    NoKey(String),
    /// Window outside 1..=600 seconds.
    #[error("profile {name}: window {window} s outside 1..=600")]
    BadWindow {
        /// Profile name.
        name: String,
        /// Window given.
        window: u32,
    },
}

/// A user as the evaluator knows it (a small part of a RACF user profile).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserProfile {
    /// User ID.
    pub user: RacfName,
    /// Default connect group, used for `APPL.GROUP[.USERID]` profiles.
    pub default_group: Option<RacfName>,
    /// `NOPASSWORD` user: PassTickets are refused.
    pub protected: bool,
}

/// Why a logon was refused. Each has a stable reason code (protocol-specs/passticket.md §4.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RefusalReason {
    /// Not a ticket of any key of the profile, or a time far from now.
    BadTicket,
    /// Valid ticket whose time is older than the window.
    Expired,
    /// Valid ticket whose time is later than the window.
    NotYetValid,
    /// Already used for this user and application inside its window.
    Replayed,
    /// No PTKTDATA profile for the application (or qualified for this user).
    UnknownApplication,
    /// The user ID is not defined.
    UnknownUser,
    /// The user ID is revoked.
    Revoked,
    /// The user ID is protected (`NOPASSWORD`) and cannot use PassTickets.
    ProtectedUser,
    /// The replay cache is full; the logon is refused rather than let through unchecked.
    ReplayCacheFull,
    /// A password or passphrase logon with the wrong secret (counted like a bad ticket).
    PasswordInvalid,
}

impl RefusalReason {
    /// zgate reason code carried on the wire by the host protocols.
    pub fn code(self) -> u16 {
        match self {
            RefusalReason::BadTicket => 0x0101,
            RefusalReason::Expired => 0x0102,
            RefusalReason::NotYetValid => 0x0103,
            RefusalReason::Replayed => 0x0104,
            RefusalReason::UnknownApplication => 0x0105,
            RefusalReason::UnknownUser => 0x0106,
            RefusalReason::Revoked => 0x0107,
            RefusalReason::ProtectedUser => 0x0108,
            RefusalReason::ReplayCacheFull => 0x0109,
            RefusalReason::PasswordInvalid => 0x0110,
        }
    }

    /// RACF `RACROUTE REQUEST=VERIFY` return code this corresponds to:
    /// 4 user not defined, 8 password (PassTicket) not valid, 28 user revoked.
    pub fn racf_return_code(self) -> u8 {
        match self {
            RefusalReason::UnknownUser => 4,
            RefusalReason::Revoked => 28,
            _ => 8,
        }
    }

    /// Whether the attempt counts toward revocation (it does for every
    /// "password not valid" outcome of a defined, active user).
    fn counts_as_failure(self) -> bool {
        !matches!(
            self,
            RefusalReason::UnknownUser | RefusalReason::Revoked | RefusalReason::ReplayCacheFull
        )
    }

    /// For merging the outcome of several keys: the most specific reason wins.
    fn specificity(self) -> u8 {
        match self {
            RefusalReason::Replayed => 3,
            RefusalReason::Expired | RefusalReason::NotYetValid => 2,
            _ => 1,
        }
    }
}

impl fmt::Display for RefusalReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RefusalReason::BadTicket => "PassTicket not valid",
            RefusalReason::Expired => "PassTicket expired",
            RefusalReason::NotYetValid => "PassTicket not yet valid (generated in the future)",
            RefusalReason::Replayed => "PassTicket already used",
            RefusalReason::UnknownApplication => "no PTKTDATA profile for the application",
            RefusalReason::UnknownUser => "user ID not defined",
            RefusalReason::Revoked => "user ID revoked",
            RefusalReason::ProtectedUser => "protected user ID cannot use PassTickets",
            RefusalReason::ReplayCacheFull => "replay cache full",
            RefusalReason::PasswordInvalid => "password not valid",
        })
    }
}

/// A refused logon.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason} (reason {code:#06x})", code = reason.code())]
pub struct Refusal {
    /// Why.
    pub reason: RefusalReason,
    /// Consecutive failures of this user after this attempt.
    pub failures: u32,
    /// True if this attempt revoked the user.
    pub revoked_now: bool,
}

/// An accepted logon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The PTKTDATA profile whose key matched.
    pub profile: String,
    /// Which algorithm.
    pub algorithm: Algorithm,
    /// The generator's clock minus ours, seconds.
    pub skew_secs: i64,
}

struct CompiledProfile {
    legacy: Option<LegacyGenerator>,
    enhanced: Option<EnhancedGenerator>,
    /// Steps 1–2 of the enhanced algorithm per (user, application) that reached this
    /// profile; bounded by the defined users (unknown users never get here).
    prepared: HashMap<(RacfName, RacfName), PreparedPair>,
    replay_protection: bool,
    legacy_window: u32,
    enhanced_window: u32,
}

#[derive(Debug, Clone)]
struct UserState {
    default_group: Option<RacfName>,
    protected: bool,
    revoked: bool,
    failures: u32,
}

type ReplayKey = (RacfName, RacfName, [u8; 8]);

/// The evaluator: profiles, users, replay cache and failure counters.
pub struct Evaluator {
    config: EvaluatorConfig,
    profiles: HashMap<String, CompiledProfile>,
    users: HashMap<RacfName, UserState>,
    /// Accepted tickets, with the last second at which each could still validate.
    replay: HashMap<ReplayKey, (u64, Option<std::time::Instant>)>,
    /// The same entries ordered by that second, for pruning.
    replay_expiry: BinaryHeap<Reverse<(u64, ReplayKey)>>,
}

/// Outcome of checking one key.
struct KeyMatch {
    algorithm: Algorithm,
    skew: i64,
    /// The window of the matching algorithm (the replay entry lives that long).
    window: u32,
}

impl Evaluator {
    /// An evaluator with no profiles and no users.
    pub fn new(config: EvaluatorConfig) -> Self {
        Evaluator {
            config,
            profiles: HashMap::new(),
            users: HashMap::new(),
            replay: HashMap::new(),
            replay_expiry: BinaryHeap::new(),
        }
    }

    /// Defines (or replaces) a PTKTDATA profile. The key schedules are built here, once.
    pub fn define_profile(&mut self, profile: PtktProfile) -> Result<(), ProfileError> {
        let name = canonical_profile_name(&profile.name)?;
        if profile.legacy_key.is_none() && profile.enhanced_key.is_none() {
            return Err(ProfileError::NoKey(name));
        }
        for window in [profile.window_secs, profile.enhanced_window_secs] {
            if !(1..=DEFAULT_WINDOW_SECS).contains(&window) {
                return Err(ProfileError::BadWindow { name, window });
            }
        }
        let compiled = CompiledProfile {
            legacy: profile.legacy_key.as_ref().map(LegacyGenerator::new),
            enhanced: profile
                .enhanced_key
                .as_ref()
                .map(|(k, t)| EnhancedGenerator::new(k, *t)),
            prepared: HashMap::new(),
            replay_protection: profile.replay_protection,
            legacy_window: profile.window_secs,
            enhanced_window: profile.enhanced_window_secs,
        };
        self.profiles.insert(name, compiled);
        Ok(())
    }

    /// Defines (or replaces) a user; a replaced user keeps its failure count and revocation.
    pub fn define_user(&mut self, user: UserProfile) {
        let state = self.users.entry(user.user).or_insert(UserState {
            default_group: None,
            protected: false,
            revoked: false,
            failures: 0,
        });
        state.default_group = user.default_group;
        state.protected = user.protected;
    }

    /// Lifts a revocation and clears the failure count (RACF `ALTUSER ... RESUME`).
    /// Returns false if the user is not defined.
    pub fn resume(&mut self, user: &RacfName) -> bool {
        match self.users.get_mut(user) {
            Some(s) => {
                s.revoked = false;
                s.failures = 0;
                true
            }
            None => false,
        }
    }

    /// Consecutive failed attempts of `user`, if defined.
    pub fn failures(&self, user: &RacfName) -> Option<u32> {
        self.users.get(user).map(|s| s.failures)
    }

    /// Whether `user` is defined and protected (RACF `NOPASSWORD`).
    pub fn is_protected(&self, user: &RacfName) -> bool {
        self.users.get(user).is_some_and(|u| u.protected)
    }

    /// Whether `user` is defined and revoked.
    pub fn is_revoked(&self, user: &RacfName) -> bool {
        self.users.get(user).is_some_and(|s| s.revoked)
    }

    /// Number of tickets held for replay detection.
    pub fn replay_entries(&self) -> usize {
        self.replay.len()
    }

    /// Records a failed logon of another kind (a wrong password) against `user`'s
    /// counter, so that PassTicket and password failures revoke together.
    pub fn record_failure(&mut self, user: &RacfName, reason: RefusalReason) -> Refusal {
        self.refuse(user, reason)
    }

    /// Records a successful logon of another kind, resetting `user`'s counter.
    pub fn record_success(&mut self, user: &RacfName) {
        if let Some(s) = self.users.get_mut(user) {
            s.failures = 0;
        }
    }

    /// Checks a user's status before any credential: undefined or revoked users are
    /// refused whatever they present.
    pub fn check_user(&self, user: &RacfName) -> Result<(), Refusal> {
        match self.users.get(user) {
            None => Err(Refusal {
                reason: RefusalReason::UnknownUser,
                failures: 0,
                revoked_now: false,
            }),
            Some(s) if s.revoked => Err(Refusal {
                reason: RefusalReason::Revoked,
                failures: s.failures,
                revoked_now: false,
            }),
            Some(_) => Ok(()),
        }
    }

    /// Evaluates a PassTicket logon of `user` to `appl` at `now` (seconds since the
    /// epoch). `group` is the connect group requested at logon; without one the
    /// user's default group is used for group-qualified profiles.
    pub fn evaluate(
        &mut self,
        user: &RacfName,
        group: Option<&RacfName>,
        appl: &RacfName,
        ticket: &PassTicket,
        now: u64,
    ) -> Result<Accepted, Refusal> {
        self.evaluate_at(user, group, appl, ticket, now, None)
    }

    /// [`Self::evaluate`] with a monotonic reading as well: a replay entry is then
    /// kept until its window has passed on both clocks, so that a wall-clock step
    /// forward and back cannot reopen a replay (passticket.md §4.4).
    pub fn evaluate_at(
        &mut self,
        user: &RacfName,
        group: Option<&RacfName>,
        appl: &RacfName,
        ticket: &PassTicket,
        now: u64,
        mono: Option<std::time::Instant>,
    ) -> Result<Accepted, Refusal> {
        self.check_user(user)?;
        let state = self.users.get(user).cloned().ok_or(Refusal {
            reason: RefusalReason::UnknownUser,
            failures: 0,
            revoked_now: false,
        })?;
        if state.protected {
            return Err(self.refuse(user, RefusalReason::ProtectedUser));
        }
        self.prune_replay(now, mono);

        let group = group.copied().or(state.default_group);
        let candidates = self.candidate_profiles(user, group.as_ref(), appl);
        if candidates.is_empty() {
            return Err(self.refuse(user, RefusalReason::UnknownApplication));
        }

        let mut worst = RefusalReason::BadTicket;
        let plausible = self.config.plausible_skew_secs;
        for name in candidates {
            let Some(profile) = self.profiles.get_mut(&name) else {
                continue;
            };
            let replay_protection = profile.replay_protection;
            match check_profile(profile, plausible, user, appl, ticket, now) {
                Ok(m) => {
                    let key: ReplayKey = (*user, *appl, *ticket.as_bytes());
                    if replay_protection {
                        if self.replay.contains_key(&key) {
                            return Err(self.refuse(user, RefusalReason::Replayed));
                        }
                        if self.replay.len() >= self.config.replay_capacity {
                            return Err(self.refuse(user, RefusalReason::ReplayCacheFull));
                        }
                        // Valid while |t - now'| <= window, i.e. until now' = t + window.
                        let last_valid = now
                            .saturating_add_signed(m.skew)
                            .saturating_add(u64::from(m.window));
                        // The same lifetime measured on the monotonic clock.
                        let mono_expiry = mono.map(|m| {
                            m + std::time::Duration::from_secs(last_valid.saturating_sub(now))
                        });
                        self.replay.insert(key, (last_valid, mono_expiry));
                        self.replay_expiry.push(Reverse((last_valid, key)));
                    }
                    self.record_success(user);
                    return Ok(Accepted {
                        profile: name,
                        algorithm: m.algorithm,
                        skew_secs: m.skew,
                    });
                }
                Err(reason) => {
                    if reason.specificity() > worst.specificity() {
                        worst = reason;
                    }
                }
            }
        }
        Err(self.refuse(user, worst))
    }

    /// Profile names to try, most specific first: one qualified profile (the first of
    /// `APPL.GROUP.USERID`, `APPL.USERID`, `APPL.GROUP` that exists), then `APPL`.
    ///
    /// spec: protocol-specs/passticket.md §4.2, after IBM's "Determining PTKTDATA
    /// profile names" (IBM-NAMES): qualified names first, then the unqualified one.
    fn candidate_profiles(
        &self,
        user: &RacfName,
        group: Option<&RacfName>,
        appl: &RacfName,
    ) -> Vec<String> {
        let mut qualified = Vec::with_capacity(3);
        if let Some(g) = group {
            qualified.push(format!("{appl}.{g}.{user}"));
        }
        qualified.push(format!("{appl}.{user}"));
        if let Some(g) = group {
            qualified.push(format!("{appl}.{g}"));
        }
        let mut out: Vec<String> = qualified
            .into_iter()
            .filter(|n| self.profiles.contains_key(n))
            .take(1)
            .collect();
        let plain = appl.to_string();
        if self.profiles.contains_key(&plain) {
            out.push(plain);
        }
        out
    }

    fn refuse(&mut self, user: &RacfName, reason: RefusalReason) -> Refusal {
        let mut refusal = Refusal {
            reason,
            failures: 0,
            revoked_now: false,
        };
        if let Some(s) = self.users.get_mut(user) {
            if reason.counts_as_failure() && !s.revoked {
                s.failures = s.failures.saturating_add(1);
                if self.config.revoke_after > 0 && s.failures >= self.config.revoke_after {
                    s.revoked = true;
                    refusal.revoked_now = true;
                }
            }
            refusal.failures = s.failures;
        }
        refusal
    }

    /// Forgets replay entries whose window has passed, on the wall clock and (when
    /// the caller gives one) on the monotonic clock too: an entry stays while either
    /// says it may still validate, and it holds back those behind it (fail-closed,
    /// bounded by `replay_capacity`).
    fn prune_replay(&mut self, now: u64, mono: Option<std::time::Instant>) {
        while let Some(Reverse((last_valid, key))) = self.replay_expiry.peek() {
            if *last_valid >= now {
                break;
            }
            let mono_pending = match (self.replay.get(key), mono) {
                (Some((_, Some(expiry))), Some(m)) => m <= *expiry,
                _ => false,
            };
            if mono_pending {
                break;
            }
            self.replay.remove(key);
            self.replay_expiry.pop();
        }
    }
}

/// Tries the profile's enhanced key, then its legacy key.
fn check_profile(
    profile: &mut CompiledProfile,
    plausible_skew_secs: u64,
    user: &RacfName,
    appl: &RacfName,
    ticket: &PassTicket,
    now: u64,
) -> Result<KeyMatch, RefusalReason> {
    let mut worst = RefusalReason::BadTicket;
    let (legacy_window, enhanced_window) = (profile.legacy_window, profile.enhanced_window);
    let mut judge = |decoded: Option<u64>, bits: u32, algorithm: Algorithm| -> Option<KeyMatch> {
        let skew = modular_delta(decoded?, now, bits);
        let window = match algorithm {
            Algorithm::Legacy => legacy_window,
            Algorithm::Enhanced(_) => enhanced_window,
        };
        if skew.abs() <= i64::from(window) {
            return Some(KeyMatch {
                algorithm,
                skew,
                window,
            });
        }
        if skew.unsigned_abs() <= plausible_skew_secs {
            let r = if skew < 0 {
                RefusalReason::Expired
            } else {
                RefusalReason::NotYetValid
            };
            if r.specificity() > worst.specificity() {
                worst = r;
            }
        }
        None
    };
    if let Some(g) = &profile.enhanced {
        let bits = match g.ticket_type() {
            TicketType::Upper => UPPER_TIME_BITS,
            TicketType::Mixed => 48,
        };
        let pair = profile
            .prepared
            .entry((*user, *appl))
            .or_insert_with(|| g.prepare(user, appl));
        if let Some(m) = judge(
            g.decode_time_prepared(pair, ticket),
            bits,
            Algorithm::Enhanced(g.ticket_type()),
        ) {
            return Ok(m);
        }
    }
    if let Some(g) = &profile.legacy
        && let Some(m) = judge(
            g.decode_time(user, appl, ticket).map(u64::from),
            32,
            Algorithm::Legacy,
        )
    {
        return Ok(m);
    }
    Err(worst)
}

/// `t - now` for times carried mod 2^bits, as the signed difference nearest zero.
fn modular_delta(t: u64, now: u64, bits: u32) -> i64 {
    let mask = (1u64 << bits) - 1;
    let d = t.wrapping_sub(now) & mask;
    if d >> (bits - 1) != 0 {
        // Negative: sign-extend from `bits`.
        (d | !mask) as i64
    } else {
        d as i64
    }
}

/// Upper-cases and validates a profile name: 1 to 3 RACF names joined by dots.
fn canonical_profile_name(name: &str) -> Result<String, ProfileError> {
    let parts: Vec<&str> = name.split('.').collect();
    if parts.len() > 3 {
        return Err(ProfileError::TooManyQualifiers(name.to_string()));
    }
    let mut out = Vec::with_capacity(parts.len());
    for part in parts {
        let n = RacfName::parse("profile", part).map_err(|source| ProfileError::BadName {
            name: name.to_string(),
            source,
        })?;
        out.push(n.to_string());
    }
    Ok(out.join("."))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> RacfName {
        RacfName::parse("test", s).unwrap()
    }

    fn legacy_key() -> LegacyKey {
        LegacyKey::from_hex("0123456789ABCDEF").unwrap()
    }

    fn evaluator() -> Evaluator {
        let mut e = Evaluator::new(EvaluatorConfig::default());
        let mut p = PtktProfile::new("IOSHMCSM");
        p.legacy_key = Some(legacy_key());
        e.define_profile(p).unwrap();
        e.define_user(UserProfile {
            user: name("HOSTUSR"),
            default_group: Some(name("SYS1")),
            protected: false,
        });
        e
    }

    const NOW: u64 = 1_764_028_800;

    fn ticket_at(t: u64) -> PassTicket {
        LegacyGenerator::new(&legacy_key()).generate(&name("HOSTUSR"), &name("IOSHMCSM"), t)
    }

    #[test]
    fn modular_delta_wraps() {
        assert_eq!(modular_delta(5, 3, 32), 2);
        assert_eq!(modular_delta(3, 5, 32), -2);
        assert_eq!(modular_delta(0, u64::from(u32::MAX), 32), 1);
        assert_eq!(modular_delta(1 << 32, 1 << 32, 32), 0);
        assert_eq!(modular_delta(10, (1 << 41) + 10, 41), 0);
    }

    #[test]
    fn window_boundaries_are_inclusive() {
        let (u, a) = (name("HOSTUSR"), name("IOSHMCSM"));
        let mut e = evaluator();
        assert!(e.evaluate(&u, None, &a, &ticket_at(NOW - 600), NOW).is_ok());
        assert!(e.evaluate(&u, None, &a, &ticket_at(NOW + 600), NOW).is_ok());
        let r = e
            .evaluate(&u, None, &a, &ticket_at(NOW - 601), NOW)
            .unwrap_err();
        assert_eq!(r.reason, RefusalReason::Expired);
        let r = e
            .evaluate(&u, None, &a, &ticket_at(NOW + 601), NOW)
            .unwrap_err();
        assert_eq!(r.reason, RefusalReason::NotYetValid);
    }

    #[test]
    fn replay_refused_then_forgotten_after_window() {
        let (u, a) = (name("HOSTUSR"), name("IOSHMCSM"));
        let mut e = evaluator();
        let t = ticket_at(NOW);
        assert!(e.evaluate(&u, None, &a, &t, NOW).is_ok());
        assert_eq!(
            e.evaluate(&u, None, &a, &t, NOW + 1).unwrap_err().reason,
            RefusalReason::Replayed
        );
        assert_eq!(e.replay_entries(), 1);
        // Once the ticket cannot validate any more, the entry is pruned.
        assert_eq!(
            e.evaluate(&u, None, &a, &t, NOW + 601).unwrap_err().reason,
            RefusalReason::Expired
        );
        assert_eq!(e.replay_entries(), 0);
    }

    /// spec: passticket.md §4.4: a wall clock that jumps forward (pruning by wall
    /// time alone) and back must not reopen a replay: the entry waits for the
    /// monotonic clock too.
    #[test]
    fn a_clock_step_forward_and_back_does_not_reopen_a_replay() {
        let (u, a) = (name("HOSTUSR"), name("IOSHMCSM"));
        let mut e = evaluator();
        let mono = std::time::Instant::now();
        let s = std::time::Duration::from_secs;
        let t = ticket_at(NOW);
        assert!(e.evaluate_at(&u, None, &a, &t, NOW, Some(mono)).is_ok());
        // Wall time jumps two hours ahead one second later: another logon prunes.
        let later = ticket_at(NOW + 7200);
        assert!(
            e.evaluate_at(&u, None, &a, &later, NOW + 7200, Some(mono + s(1)))
                .is_ok()
        );
        assert_eq!(
            e.replay_entries(),
            2,
            "kept: its window has not passed in real time"
        );
        // The wall clock is set back: the first ticket is refused as a replay.
        let r = e.evaluate_at(&u, None, &a, &t, NOW + 2, Some(mono + s(2)));
        assert_eq!(r.unwrap_err().reason, RefusalReason::Replayed);
        // Once its window has passed on both clocks it goes.
        let _ = e.evaluate_at(&u, None, &a, &t, NOW + 7300, Some(mono + s(700)));
        assert_eq!(e.replay_entries(), 1);
    }

    #[test]
    fn revocation_after_n_failures_and_resume() {
        let (u, a) = (name("HOSTUSR"), name("IOSHMCSM"));
        let mut e = evaluator();
        let bad = PassTicket::parse("AAAAAAAA").unwrap();
        let r1 = e.evaluate(&u, None, &a, &bad, NOW).unwrap_err();
        assert_eq!((r1.failures, r1.revoked_now), (1, false));
        e.evaluate(&u, None, &a, &bad, NOW).unwrap_err();
        let r3 = e.evaluate(&u, None, &a, &bad, NOW).unwrap_err();
        assert!(r3.revoked_now);
        // Revoked: even a good ticket is refused.
        let r = e.evaluate(&u, None, &a, &ticket_at(NOW), NOW).unwrap_err();
        assert_eq!(
            (r.reason, r.reason.racf_return_code()),
            (RefusalReason::Revoked, 28)
        );
        assert!(e.resume(&u));
        assert!(e.evaluate(&u, None, &a, &ticket_at(NOW), NOW).is_ok());
    }

    #[test]
    fn success_resets_failures() {
        let (u, a) = (name("HOSTUSR"), name("IOSHMCSM"));
        let mut e = evaluator();
        e.evaluate(&u, None, &a, &PassTicket::parse("AAAAAAAA").unwrap(), NOW)
            .unwrap_err();
        assert_eq!(e.failures(&u), Some(1));
        e.evaluate(&u, None, &a, &ticket_at(NOW), NOW).unwrap();
        assert_eq!(e.failures(&u), Some(0));
    }

    #[test]
    fn unknown_user_application_and_protected_user() {
        let mut e = evaluator();
        let t = ticket_at(NOW);
        let r = e
            .evaluate(&name("NOBODY"), None, &name("IOSHMCSM"), &t, NOW)
            .unwrap_err();
        assert_eq!(
            (r.reason, r.reason.racf_return_code()),
            (RefusalReason::UnknownUser, 4)
        );
        let r = e
            .evaluate(&name("HOSTUSR"), None, &name("OTHER"), &t, NOW)
            .unwrap_err();
        assert_eq!(r.reason, RefusalReason::UnknownApplication);
        e.define_user(UserProfile {
            user: name("HOSTUSR"),
            default_group: None,
            protected: true,
        });
        let r = e
            .evaluate(&name("HOSTUSR"), None, &name("IOSHMCSM"), &t, NOW)
            .unwrap_err();
        assert_eq!(r.reason, RefusalReason::ProtectedUser);
    }

    #[test]
    fn qualified_profile_precedence_and_fallback() {
        let (u, a) = (name("HOSTUSR"), name("IOSHMCSM"));
        let mut e = evaluator();
        let user_key = LegacyKey::from_hex("FEDCBA9876543210").unwrap();
        let mut p = PtktProfile::new("ioshmcsm.sys1.hostusr");
        p.legacy_key = Some(user_key.clone());
        e.define_profile(p).unwrap();
        // The user-qualified key is tried first ...
        let t = LegacyGenerator::new(&user_key).generate(&u, &a, NOW);
        assert_eq!(
            e.evaluate(&u, None, &a, &t, NOW).unwrap().profile,
            "IOSHMCSM.SYS1.HOSTUSR"
        );
        // ... and the plain APPL profile still validates as the fallback.
        assert_eq!(
            e.evaluate(&u, None, &a, &ticket_at(NOW + 1), NOW)
                .unwrap()
                .profile,
            "IOSHMCSM"
        );
        // With another connect group the group-qualified profile does not apply.
        let t2 = LegacyGenerator::new(&user_key).generate(&u, &a, NOW + 2);
        assert!(e.evaluate(&u, Some(&name("OTHER")), &a, &t2, NOW).is_err());
    }

    #[test]
    fn no_replay_protection_allows_reuse() {
        let (u, a) = (name("HOSTUSR"), name("IOSHMCSM"));
        let mut e = evaluator();
        let mut p = PtktProfile::new("IOSHMCSM");
        p.legacy_key = Some(legacy_key());
        p.replay_protection = false;
        e.define_profile(p).unwrap();
        let t = ticket_at(NOW);
        assert!(e.evaluate(&u, None, &a, &t, NOW).is_ok());
        assert!(e.evaluate(&u, None, &a, &t, NOW).is_ok());
        assert_eq!(e.replay_entries(), 0);
    }

    #[test]
    fn replay_cache_full_fails_closed() {
        let (u, a) = (name("HOSTUSR"), name("IOSHMCSM"));
        let mut e = evaluator();
        e.config.replay_capacity = 1;
        assert!(e.evaluate(&u, None, &a, &ticket_at(NOW), NOW).is_ok());
        let r = e
            .evaluate(&u, None, &a, &ticket_at(NOW + 1), NOW)
            .unwrap_err();
        assert_eq!((r.reason, r.failures), (RefusalReason::ReplayCacheFull, 0));
    }

    #[test]
    fn profile_definitions_are_checked() {
        let mut e = evaluator();
        assert!(matches!(
            e.define_profile(PtktProfile::new("APPL")),
            Err(ProfileError::NoKey(_))
        ));
        let mut p = PtktProfile::new("A.B.C.D");
        p.legacy_key = Some(legacy_key());
        assert!(matches!(
            e.define_profile(p.clone()),
            Err(ProfileError::TooManyQualifiers(_))
        ));
        p.name = "APPL".into();
        p.window_secs = 601;
        assert!(matches!(
            e.define_profile(p),
            Err(ProfileError::BadWindow { .. })
        ));
    }
}
