//! Helpers shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use zgate::tls::{ThrowawayIdentity, ThrowawayPki};

/// A test PKI generated in the test: one CA, certificates it signs.
pub struct TestPki(ThrowawayPki);

/// A certificate and its private key, PEM.
pub type Identity = ThrowawayIdentity;

impl TestPki {
    pub fn new(name: &str) -> TestPki {
        TestPki(ThrowawayPki::new(name).unwrap())
    }

    /// The CA certificate, PEM.
    pub fn ca_pem(&self) -> &str {
        &self.0.ca_pem
    }

    /// An end-entity certificate for `names` (DNS names or IP addresses).
    pub fn issue(&self, names: &[&str]) -> Identity {
        self.0.issue(names).unwrap()
    }
}

/// The clock every component of one test shares: wall time starts at
/// 2026-01-01T00:00:00Z and advances with tokio's clock (paused in most tests), and
/// the jitter seed is fixed, so that tickets, windows and backup ids are repeatable.
pub fn test_clock() -> zgate::clock::Clock {
    zgate::clock::Clock::starting_at_unix(TEST_EPOCH, 42)
}

/// Wall time at the start of every test, seconds since the epoch.
pub const TEST_EPOCH: u64 = 1_767_225_600;
