//! Who may try, pure: failed-logon throttling per source address and connection
//! counts per source address (spec: protocol-specs/framing.md §9). Time is an input;
//! the listeners (`crate::server`) own the clock.
//!
//! Throttling keeps RACF's revocation rule from being a remote lock-out switch: after
//! `max_failures` refused logons from one address within `window`, further logons
//! from it are refused without being evaluated (so they do not count toward the
//! user's revocation) until `window` has passed since its last failure.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Throttle settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleConfig {
    /// Refused logons from one address within `window` before it is throttled
    /// (0 = never throttle).
    pub max_failures: u32,
    /// How long failures are remembered, and how long a throttled address waits.
    pub window: Duration,
    /// Addresses remembered at most (the oldest is forgotten first).
    pub max_addresses: usize,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        ThrottleConfig {
            max_failures: 2,
            window: Duration::from_secs(60),
            max_addresses: 4096,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
}

/// Failed-logon throttle per source address.
#[derive(Debug, Default)]
pub struct LogonThrottle {
    config: ThrottleConfig,
    by_address: HashMap<IpAddr, Failures>,
}

impl LogonThrottle {
    /// A throttle with `config`.
    pub fn new(config: ThrottleConfig) -> Self {
        LogonThrottle {
            config,
            by_address: HashMap::new(),
        }
    }

    /// True when a logon from `addr` must be refused unevaluated now.
    pub fn is_throttled(&mut self, addr: IpAddr, now: Instant) -> bool {
        self.forget_old(now);
        self.config.max_failures > 0
            && self
                .by_address
                .get(&addr)
                .is_some_and(|f| f.count >= self.config.max_failures)
    }

    /// Records the outcome of an evaluated logon from `addr`.
    pub fn record(&mut self, addr: IpAddr, now: Instant, accepted: bool) {
        if accepted {
            self.by_address.remove(&addr);
            return;
        }
        self.forget_old(now);
        if self.by_address.len() >= self.config.max_addresses
            && !self.by_address.contains_key(&addr)
            && let Some(oldest) = self
                .by_address
                .iter()
                .min_by_key(|(_, f)| f.last)
                .map(|(a, _)| *a)
        {
            self.by_address.remove(&oldest);
        }
        let entry = self.by_address.entry(addr).or_insert(Failures {
            count: 0,
            last: now,
        });
        entry.count = entry.count.saturating_add(1);
        entry.last = now;
    }

    /// Addresses with failures remembered.
    pub fn addresses(&self) -> usize {
        self.by_address.len()
    }

    fn forget_old(&mut self, now: Instant) {
        let window = self.config.window;
        self.by_address
            .retain(|_, f| now.saturating_duration_since(f.last) < window);
    }
}

/// Open connections per source address, with a cap.
#[derive(Debug, Default)]
pub struct ConnectionCounts {
    per_address: usize,
    open: HashMap<IpAddr, usize>,
}

impl ConnectionCounts {
    /// At most `per_address` connections from one address (0 = no cap).
    pub fn new(per_address: usize) -> Self {
        ConnectionCounts {
            per_address,
            open: HashMap::new(),
        }
    }

    /// Takes a slot for `addr`; false when the address is at its cap.
    pub fn try_open(&mut self, addr: IpAddr) -> bool {
        let n = self.open.entry(addr).or_default();
        if self.per_address > 0 && *n >= self.per_address {
            return false;
        }
        *n += 1;
        true
    }

    /// Gives back a slot taken by [`Self::try_open`].
    pub fn close(&mut self, addr: IpAddr) {
        if let Some(n) = self.open.get_mut(&addr) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.open.remove(&addr);
            }
        }
    }

    /// Connections open from `addr`.
    pub fn open(&self, addr: IpAddr) -> usize {
        self.open.get(&addr).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_failures_throttle_an_address_for_the_window_and_a_success_clears_it() {
        let t = Instant::now();
        let (a, b): (IpAddr, IpAddr) = ([127, 0, 0, 2].into(), [127, 0, 0, 3].into());
        let mut th = LogonThrottle::new(ThrottleConfig::default());
        assert!(!th.is_throttled(a, t));
        th.record(a, t, false);
        assert!(!th.is_throttled(a, t));
        th.record(a, t + Duration::from_secs(1), false);
        assert!(th.is_throttled(a, t + Duration::from_secs(2)));
        assert!(
            !th.is_throttled(b, t + Duration::from_secs(2)),
            "per address"
        );
        assert!(
            !th.is_throttled(a, t + Duration::from_secs(61)),
            "window passed"
        );
        th.record(b, t, false);
        th.record(b, t, true);
        assert_eq!(th.addresses(), 0);
    }

    #[test]
    fn remembered_addresses_are_bounded() {
        let t = Instant::now();
        let mut th = LogonThrottle::new(ThrottleConfig {
            max_addresses: 3,
            ..ThrottleConfig::default()
        });
        for i in 0..10u8 {
            th.record(
                [10, 0, 0, i].into(),
                t + Duration::from_millis(u64::from(i)),
                false,
            );
        }
        assert_eq!(th.addresses(), 3);
    }

    #[test]
    fn connections_per_address_are_capped() {
        let a: IpAddr = [127, 0, 0, 2].into();
        let mut c = ConnectionCounts::new(2);
        assert!(c.try_open(a) && c.try_open(a));
        assert!(!c.try_open(a));
        c.close(a);
        assert!(c.try_open(a));
        assert_eq!(c.open(a), 2);
    }
}
