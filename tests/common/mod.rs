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

/// The sample DS8000 service (`testdata/peers/ds8k.toml`) on a free loopback port,
/// with `adjust` applied to its configuration, on `clock`.
pub async fn ds8k_service(
    clock: zgate::clock::Clock,
    adjust: impl FnOnce(&mut zgate::peer::ds8k::Ds8kServiceConfig),
) -> zgate::peer::ds8k::Ds8kService {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/peers/ds8k.toml"
    ))
    .unwrap();
    let mut cfg: zgate::peer::ds8k::Ds8kServiceConfig = toml::from_str(&text).unwrap();
    cfg.listen = "127.0.0.1:0".parse().unwrap();
    adjust(&mut cfg);
    let system = zgate::sim::hmc::Ds8kSystem::with_keys(&cfg.system, |_| None).unwrap();
    let mut listen = cfg.listen_config().unwrap();
    listen.clock = clock;
    zgate::peer::ds8k::Ds8kService::start_on(listen, &cfg, system)
        .await
        .unwrap()
}

/// A CSM connector logged on as `user` (a password up to 8 characters, else a
/// passphrase), trusting `ca` for `server_name`.
pub async fn csm_logged_on(
    addr: std::net::SocketAddr,
    ca: &[u8],
    server_name: &str,
    user: &str,
    password: &str,
    clock: zgate::clock::Clock,
) -> zgate::client::csm::CsmHandle {
    use zgate::client::csm::{Authentication, ConnectorEvent};
    use zgate::proto::logon::Credential;
    let mut c = zgate::client::csm::CsmConnectorConfig::new(addr);
    c.user = user.into();
    c.appl = "CSM".into();
    c.clock = clock;
    c.max_logon_refusals = 1;
    c.request_timeout = std::time::Duration::from_secs(30);
    c.tls = Some(zgate::tls::ClientTls::from_pem(ca, server_name, None).unwrap());
    let credential = Credential::new(password).unwrap();
    let auth = if password.len() > 8 {
        Authentication::Passphrase(credential)
    } else {
        Authentication::Password(credential)
    };
    let mut h = zgate::client::csm::spawn(c, auth).unwrap();
    loop {
        let event = tokio::time::timeout(std::time::Duration::from_secs(30), h.next_event())
            .await
            .unwrap()
            .unwrap();
        match event {
            ConnectorEvent::Connected { .. } => return h,
            ConnectorEvent::GaveUp { status, .. } => panic!("logon refused: {status:?}"),
            _ => {}
        }
    }
}
