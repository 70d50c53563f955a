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
