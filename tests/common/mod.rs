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

/// The sample Metro Mirror complex (`testdata/peers/ds8k-metro-mirror.toml`: H1
/// 75FA120, H2 75FA121), each image's HMC on a free loopback port, ticking every
/// 100 ms of `clock`.
pub async fn metro_mirror_complex(clock: zgate::clock::Clock) -> zgate::peer::ds8k::Ds8kService {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/peers/ds8k-metro-mirror.toml"
    ))
    .unwrap();
    let mut cfg: zgate::peer::ds8k::Ds8kServiceConfig = toml::from_str(&text).unwrap();
    cfg.listen = "127.0.0.1:0".parse().unwrap();
    cfg.tick_ms = 100;
    let mut systems = zgate::sim::hmc::Ds8kSystem::complex_with_keys(
        &[&cfg.system, &cfg.remote[0].system],
        cfg.mirror.clone(),
        |_| None,
    )
    .unwrap();
    let h2 = systems.pop().unwrap();
    let h1 = systems.pop().unwrap();
    let mut listen = cfg.listen_config().unwrap();
    listen.clock = clock;
    let mut remote = cfg.listen_config().unwrap();
    remote.listen = "127.0.0.1:0".parse().unwrap();
    zgate::peer::ds8k::Ds8kService::start_complex(listen, vec![(remote, h2)], &cfg, h1)
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

/// A gateway on a store at `store` (new or existing), on the test clock, with the
/// first Administrator `admin` (argon2id hash `admin_hash`) and `grace` to finish
/// storage actions at shutdown.
pub fn start_gateway(
    store: &std::path::Path,
    key: &std::sync::Arc<zgate::store::sealing::SealingKey>,
    admin_hash: &str,
    grace: std::time::Duration,
) -> zgate::gateway::Gateway {
    zgate::gateway::Gateway::start(zgate::gateway::GatewayConfig {
        store: store.to_owned(),
        engine: zgate::policy::engine::EngineConfig::default(),
        clock: test_clock(),
        sealing_key: key.clone(),
        storage_timeout: std::time::Duration::from_secs(30),
        bootstrap_admin: Some(("admin".into(), admin_hash.to_owned())),
        shutdown_grace: grace,
        snapshot_every: zgate::gateway::DEFAULT_SNAPSHOT_EVERY,
        standby_of: None,
        fence_domain: 0,
    })
    .unwrap()
}

/// The enhanced PassTicket key of the sample emulated hosts (64 hex digits).
pub const HOST_KEY: &str = "00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF";

/// The secrets the sample emulated hosts read from their environment.
pub fn host_env(v: &str) -> Option<String> {
    match v {
        "ZGATE_ZOS_ENHANCED_KEY" | "ZGATE_ZTPF_ENHANCED_KEY" => Some(HOST_KEY.into()),
        "ZGATE_ZOS_LEGACY_KEY" => Some("0123456789ABCDEF".into()),
        "HMC_PASSWORD" => Some("HMCPASS1".into()),
        _ => None,
    }
}

/// A sample emulated system's configuration (`testdata/peers/<name>`), on a free
/// loopback port, with a `[storage]` table pointing at `storage` when given.
pub fn peer_config_text(name: &str, storage: Option<std::net::SocketAddr>) -> String {
    let sample = std::fs::read_to_string(format!(
        "{}/testdata/peers/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let mut text = sample
        .replace("127.0.0.1:5858", "127.0.0.1:0")
        .replace("127.0.0.1:5860", "127.0.0.1:0");
    if let Some(addr) = storage {
        text += &format!(
            "\n[storage]\naddr = \"{addr}\"\nimage = \"IBM.2107-75FA120\"\nuser = \"CSMADMIN\"\npassword_env = \"HMC_PASSWORD\"\nrequest_timeout_secs = 2\n"
        );
    }
    text
}

/// The sample emulated z/OS (`testdata/peers/zos.toml`) on a free loopback port,
/// driving the DS8000 at `storage` when given, on `clock`.
pub async fn start_zos_peer(
    storage: Option<std::net::SocketAddr>,
    clock: zgate::clock::Clock,
) -> zgate::peer::zos::ZosPeer {
    let cfg: zgate::peer::zos::ZosPeerConfig =
        toml::from_str(&peer_config_text("zos.toml", storage)).unwrap();
    zgate::peer::zos::ZosPeer::from_config_with(cfg, host_env, clock)
        .await
        .unwrap()
}

/// The sample emulated z/TPF (`testdata/peers/ztpf.toml`), as [`start_zos_peer`].
pub async fn start_ztpf_peer(
    storage: Option<std::net::SocketAddr>,
    clock: zgate::clock::Clock,
) -> zgate::peer::ztpf::ZtpfPeer {
    let cfg: zgate::peer::ztpf::ZtpfPeerConfig =
        toml::from_str(&peer_config_text("ztpf.toml", storage)).unwrap();
    zgate::peer::ztpf::ZtpfPeer::from_config_with(cfg, host_env, clock)
        .await
        .unwrap()
}

/// A TCP relay on loopback that a test can cut (a network partition, a link to a
/// box that fails) and mend: cut, it closes what it carries and every new connection.
pub struct Relay {
    /// Where clients connect.
    pub addr: std::net::SocketAddr,
    target: std::sync::Arc<std::sync::Mutex<Option<std::net::SocketAddr>>>,
    cut: std::sync::Arc<std::sync::atomic::AtomicBool>,
    carried: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Relay {
    /// Listens on a free loopback port; [`Relay::to`] says where to.
    pub async fn start() -> Relay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let relay = Relay {
            addr: listener.local_addr().unwrap(),
            target: Default::default(),
            cut: Default::default(),
            carried: Default::default(),
        };
        let (target, cut, carried) = (
            relay.target.clone(),
            relay.cut.clone(),
            relay.carried.clone(),
        );
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let to = *target.lock().unwrap();
                let (Some(to), false) = (to, cut.load(std::sync::atomic::Ordering::SeqCst)) else {
                    continue;
                };
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(to).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                carried.lock().unwrap().push(task.abort_handle());
            }
        });
        relay
    }

    /// Carries new connections to `target`.
    pub fn to(&self, target: std::net::SocketAddr) {
        *self.target.lock().unwrap() = Some(target);
    }

    /// Cuts (closing what it carries and refusing new connections) or mends.
    pub fn set_cut(&self, cut: bool) {
        self.cut.store(cut, std::sync::atomic::Ordering::SeqCst);
        if cut {
            for task in self.carried.lock().unwrap().drain(..) {
                task.abort();
            }
        }
    }
}

/// The sample emulated z/OS with HyperSwap on the Metro Mirror complex `service`:
/// `[storage]` at `h1` (H1's HMC, or a relay to it), `[[hyperswap_storage]]` at H2's
/// HMC, and its applications writing 200 times a second to 15 tracks of each
/// production volume.
pub async fn zos_on_complex(
    service: &zgate::peer::ds8k::Ds8kService,
    h1: std::net::SocketAddr,
    clock: zgate::clock::Clock,
) -> (
    zgate::peer::zos::ZosPeer,
    std::sync::Arc<zgate::peer::hyperswap::HyperSwapIo>,
) {
    let mut text = peer_config_text("zos.toml", Some(h1));
    text += &format!(
        "\n[[hyperswap_storage]]\naddr = \"{}\"\nimage = \"IBM.2107-75FA121\"\nuser = \"CSMADMIN\"\npassword_env = \"HMC_PASSWORD\"\nrequest_timeout_secs = 2\n\n[workload]\nwrites_per_sec = 200\ntracks = 15\n",
        service.remote_addrs()[0]
    );
    let cfg: zgate::peer::zos::ZosPeerConfig = toml::from_str(&text).unwrap();
    let (peer, io) = zgate::peer::zos::ZosPeer::with_hyperswap_io(cfg, host_env, clock)
        .await
        .unwrap();
    (peer, io.unwrap())
}

/// Every write acknowledged to `io`'s applications (pair i is `volumes[i]`) reads
/// back from the complex's image `site` (0: H1, 1: H2): its tag, or a later one.
/// The applications go on writing while this reads, and one sequence numbers every
/// write, so a track may already hold a write newer than the acknowledged ones
/// read a moment before; a lost acknowledged write reads as an older tag.
pub fn all_acknowledged_on(
    service: &zgate::peer::ds8k::Ds8kService,
    io: &zgate::peer::hyperswap::HyperSwapIo,
    site: usize,
    volumes: &[u16],
) {
    let acked = io.acknowledged();
    assert!(acked.len() > 10, "the applications wrote: {}", acked.len());
    let control = if site == 0 {
        service.control()
    } else {
        service.remote_control(0).unwrap()
    };
    let system = control.system();
    let image = system.image();
    for ((pair, track), tag) in acked {
        let got = image
            .read_track(zgate::ds8k::VolumeId(volumes[pair]), track)
            .unwrap();
        assert!(
            got >= tag,
            "pair {pair} track {track}: the applications were told {tag} is written, it reads {got}"
        );
    }
}
