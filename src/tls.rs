//! TLS for zgate's connections: rustls with the *ring* provider, TLS 1.2 and 1.3,
//! certificates and keys from PEM. Inside TLS the frames are unchanged
//! (protocol-specs/framing.md §7).
//!
//! A listener holds a [`ServerTls`] (its certificate chain and key, and optionally a
//! CA that client certificates must chain to: mutual TLS); a connector holds a
//! [`ClientTls`] (the CA it trusts, the name the server's certificate must carry, and
//! optionally its own certificate). Handshakes run under a deadline. Private keys are
//! read into zeroizing buffers and never logged.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncWrite};
use zeroize::Zeroizing;

/// Why a TLS set-up could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A PEM input held no usable item of the kind needed.
    #[error("{what}: no {kind} found in the PEM input")]
    Missing {
        /// Which input (certificate, key, CA).
        what: &'static str,
        /// What was looked for.
        kind: &'static str,
    },
    /// A PEM input could not be parsed.
    #[error("{what}: bad PEM: {detail}")]
    Pem {
        /// Which input.
        what: &'static str,
        /// The parser's message.
        detail: String,
    },
    /// The server name is not a DNS name or IP address.
    #[error("server name {0:?} is not a DNS name or IP address")]
    ServerName(String),
    /// A client certificate was given without its key, or the reverse.
    #[error("a client certificate and its key go together")]
    HalfIdentity,
    /// rustls refused the configuration (e.g. the key does not match the certificate).
    #[error("TLS configuration: {0}")]
    Rustls(String),
}

/// Listener TLS settings as they appear in a TOML configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerTlsFiles {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// PEM CA certificates; when set, clients must present a certificate that chains
    /// to one of them (mutual TLS).
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
}

/// Connector TLS settings as they appear in a TOML configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientTlsFiles {
    /// PEM CA certificates the server's certificate must chain to.
    pub ca: PathBuf,
    /// Name the server's certificate must carry (DNS name or IP address).
    pub server_name: String,
    /// PEM certificate chain to present (mutual TLS).
    #[serde(default)]
    pub cert: Option<PathBuf>,
    /// PEM private key of `cert`.
    #[serde(default)]
    pub key: Option<PathBuf>,
}

fn read(path: &Path) -> Result<Zeroizing<Vec<u8>>, TlsError> {
    std::fs::read(path)
        .map(Zeroizing::new)
        .map_err(|source| TlsError::Read {
            path: path.to_path_buf(),
            source,
        })
}

fn certificates(what: &'static str, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            what,
            detail: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Missing {
            what,
            kind: "CERTIFICATE",
        });
    }
    Ok(certs)
}

fn private_key(what: &'static str, pem: &[u8]) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| match e {
        rustls_pki_types::pem::Error::NoItemsFound => TlsError::Missing {
            what,
            kind: "PRIVATE KEY",
        },
        other => TlsError::Pem {
            what,
            detail: other.to_string(),
        },
    })
}

fn roots(what: &'static str, pem: &[u8]) -> Result<RootCertStore, TlsError> {
    let mut store = RootCertStore::empty();
    for cert in certificates(what, pem)? {
        store
            .add(cert)
            .map_err(|e| TlsError::Rustls(format!("{what}: {e}")))?;
    }
    Ok(store)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A listener's TLS: accepts handshakes.
#[derive(Clone)]
pub struct ServerTls {
    acceptor: tokio_rustls::TlsAcceptor,
    mutual: bool,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("mutual", &self.mutual)
            .finish_non_exhaustive()
    }
}

impl ServerTls {
    /// From PEM text: certificate chain, private key, optional client CA.
    pub fn from_pem(
        cert_chain: &[u8],
        key: &[u8],
        client_ca: Option<&[u8]>,
    ) -> Result<ServerTls, TlsError> {
        ServerTls::build(cert_chain, key, client_ca, true)
    }

    /// With a client CA, client certificates are verified against it, and required
    /// when `required` (else verified only when presented).
    fn build(
        cert_chain: &[u8],
        key: &[u8],
        client_ca: Option<&[u8]>,
        required: bool,
    ) -> Result<ServerTls, TlsError> {
        let chain = certificates("certificate", cert_chain)?;
        let key = private_key("key", key)?;
        let builder = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Rustls(e.to_string()))?;
        let builder = match client_ca {
            Some(ca) => {
                let verifier = WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots("client CA", ca)?),
                    provider(),
                );
                let verifier = if required {
                    verifier
                } else {
                    verifier.allow_unauthenticated()
                };
                let verifier = verifier
                    .build()
                    .map_err(|e| TlsError::Rustls(e.to_string()))?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let config = builder
            .with_single_cert(chain, key)
            .map_err(|e| TlsError::Rustls(e.to_string()))?;
        Ok(ServerTls {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
            mutual: client_ca.is_some(),
        })
    }

    /// From the files a configuration names.
    pub fn from_files(files: &ServerTlsFiles) -> Result<ServerTls, TlsError> {
        let ca = files.client_ca.as_deref().map(read).transpose()?;
        ServerTls::from_pem(
            &read(&files.cert)?,
            &read(&files.key)?,
            ca.as_ref().map(|c| c.as_slice()),
        )
    }

    /// True when clients must present a certificate.
    pub fn is_mutual(&self) -> bool {
        self.mutual
    }

    /// Runs the server side of the handshake on `stream`, within `deadline`.
    pub async fn accept<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        stream: S,
        deadline: Duration,
    ) -> std::io::Result<tokio_rustls::server::TlsStream<S>> {
        tokio::time::timeout(deadline, self.acceptor.accept(stream))
            .await
            .map_err(|_| handshake_timeout())?
    }
}

/// A listener's certificate and key that can be replaced while it runs: a standby
/// takes its active's CSM certificate at pairing, so that a client that trusts the
/// active trusts the new active after a takeover (ha.md §2.5). The next handshake
/// uses the new one; connections open stay as they are.
#[derive(Clone)]
pub struct CertSlot(Arc<std::sync::RwLock<Arc<rustls::sign::CertifiedKey>>>);

impl std::fmt::Debug for CertSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertSlot").finish_non_exhaustive()
    }
}

impl rustls::server::ResolvesServerCert for CertSlot {
    fn resolve(
        &self,
        _client_hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        self.0.read().ok().map(|k| k.clone())
    }
}

fn certified(cert_chain: &[u8], key: &[u8]) -> Result<Arc<rustls::sign::CertifiedKey>, TlsError> {
    let chain = certificates("certificate", cert_chain)?;
    let key = private_key("key", key)?;
    let signer = provider()
        .key_provider
        .load_private_key(key)
        .map_err(|e| TlsError::Rustls(e.to_string()))?;
    let certified = rustls::sign::CertifiedKey::new(chain, signer);
    certified
        .keys_match()
        .map_err(|e| TlsError::Rustls(format!("the key does not match the certificate: {e}")))?;
    Ok(Arc::new(certified))
}

impl CertSlot {
    /// Replaces the certificate and key (PEM); the old stay if these do not load.
    pub fn replace(&self, cert_chain: &[u8], key: &[u8]) -> Result<(), TlsError> {
        let next = certified(cert_chain, key)?;
        if let Ok(mut slot) = self.0.write() {
            *slot = next;
        }
        Ok(())
    }
}

impl ServerTls {
    /// A listener's TLS (no client certificates) whose certificate can be replaced
    /// later through the returned [`CertSlot`].
    pub fn replaceable(cert_chain: &[u8], key: &[u8]) -> Result<(ServerTls, CertSlot), TlsError> {
        let slot = CertSlot(Arc::new(std::sync::RwLock::new(certified(
            cert_chain, key,
        )?)));
        let config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Rustls(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(slot.clone()));
        Ok((
            ServerTls {
                acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
                mutual: false,
            },
            slot,
        ))
    }
}

/// The HA listener's TLS (protocol-specs/ha.md §2): the server's own certificate,
/// and client certificates verified against the pair's CA when presented, but not
/// required (PAIR is authenticated by a password; FOLLOW and PROBE need a certificate,
/// which the HA layer checks with [`peer_has_certificate`]).
pub fn pair_listener(
    cert_chain: &[u8],
    key: &[u8],
    pair_ca: Option<&[u8]>,
) -> Result<ServerTls, TlsError> {
    ServerTls::build(cert_chain, key, pair_ca, false)
}

/// True when the client of an accepted connection presented a certificate (which
/// the listener's verifier has checked).
pub fn peer_has_certificate<S>(stream: &tokio_rustls::server::TlsStream<S>) -> bool {
    stream
        .get_ref()
        .1
        .peer_certificates()
        .is_some_and(|c| !c.is_empty())
}

/// Accepts any server certificate: only for HA pairing (ha.md §2.2), where the
/// dialer authenticates with a password of the listener's Administrator and the
/// listener's certificate is not yet known. Signatures are still checked, so the
/// peer holds the key of the certificate it shows.
#[derive(Debug)]
struct FirstContact(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for FirstContact {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

impl ClientTls {
    /// The connector of HA pairing (ha.md §2.2): any server certificate, no client
    /// certificate.
    pub fn first_contact(server_name: &str) -> Result<ClientTls, TlsError> {
        let name = ServerName::try_from(server_name.to_string())
            .map_err(|_| TlsError::ServerName(server_name.to_string()))?;
        let config = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Rustls(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(FirstContact(provider())))
            .with_no_client_auth();
        Ok(ClientTls {
            connector: tokio_rustls::TlsConnector::from(Arc::new(config)),
            server_name: name,
        })
    }
}

/// A connector's TLS: starts handshakes to one server name.
#[derive(Clone)]
pub struct ClientTls {
    connector: tokio_rustls::TlsConnector,
    server_name: ServerName<'static>,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl ClientTls {
    /// From PEM text: trusted CA certificates, the server name to check, and an
    /// optional identity (certificate chain, key) for mutual TLS.
    pub fn from_pem(
        ca: &[u8],
        server_name: &str,
        identity: Option<(&[u8], &[u8])>,
    ) -> Result<ClientTls, TlsError> {
        let name = ServerName::try_from(server_name.to_string())
            .map_err(|_| TlsError::ServerName(server_name.to_string()))?;
        let builder = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Rustls(e.to_string()))?
            .with_root_certificates(roots("CA", ca)?);
        let config = match identity {
            Some((cert, key)) => builder
                .with_client_auth_cert(
                    certificates("client certificate", cert)?,
                    private_key("client key", key)?,
                )
                .map_err(|e| TlsError::Rustls(e.to_string()))?,
            None => builder.with_no_client_auth(),
        };
        Ok(ClientTls {
            connector: tokio_rustls::TlsConnector::from(Arc::new(config)),
            server_name: name,
        })
    }

    /// From the files a configuration names.
    pub fn from_files(files: &ClientTlsFiles) -> Result<ClientTls, TlsError> {
        let identity = match (&files.cert, &files.key) {
            (Some(c), Some(k)) => Some((read(c)?, read(k)?)),
            (None, None) => None,
            _ => return Err(TlsError::HalfIdentity),
        };
        ClientTls::from_pem(
            &read(&files.ca)?,
            &files.server_name,
            identity.as_ref().map(|(c, k)| (c.as_slice(), k.as_slice())),
        )
    }

    /// Runs the client side of the handshake on `stream`, within `deadline`.
    pub async fn connect<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        stream: S,
        deadline: Duration,
    ) -> std::io::Result<tokio_rustls::client::TlsStream<S>> {
        tokio::time::timeout(
            deadline,
            self.connector.connect(self.server_name.clone(), stream),
        )
        .await
        .map_err(|_| handshake_timeout())?
    }
}

fn handshake_timeout() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::TimedOut, "TLS handshake timed out")
}

/// A certificate authority made in memory, with certificates it signs: for demos,
/// benchmarks and tests on one machine, never for production (the keys live only as
/// long as the process, or in the files the caller writes them to).
pub struct ThrowawayPki {
    ca_params: rcgen::CertificateParams,
    ca_key: rcgen::KeyPair,
    /// The CA certificate, PEM: what clients trust.
    pub ca_pem: String,
}

/// A certificate and its private key, PEM. `Debug` shows the certificate only.
pub struct ThrowawayIdentity {
    /// Certificate, PEM.
    pub cert_pem: String,
    /// Private key, PEM (zeroized on drop).
    pub key_pem: Zeroizing<String>,
}

impl std::fmt::Debug for ThrowawayIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThrowawayIdentity")
            .field("key_pem", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl ThrowawayPki {
    /// A new CA named `name`.
    pub fn new(name: &str) -> Result<ThrowawayPki, TlsError> {
        let err = |e: rcgen::Error| TlsError::Rustls(format!("certificate generation: {e}"));
        let ca_key = rcgen::KeyPair::generate().map_err(err)?;
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let ca_pem = ca_params.self_signed(&ca_key).map_err(err)?.pem();
        Ok(ThrowawayPki {
            ca_params,
            ca_key,
            ca_pem,
        })
    }

    /// An end-entity certificate for `names` (DNS names or IP addresses; the first is
    /// also the common name), signed by this CA.
    pub fn issue(&self, names: &[&str]) -> Result<ThrowawayIdentity, TlsError> {
        let err = |e: rcgen::Error| TlsError::Rustls(format!("certificate generation: {e}"));
        let key = rcgen::KeyPair::generate().map_err(err)?;
        let mut params =
            rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .map_err(err)?;
        if let Some(first) = names.first() {
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, *first);
        }
        let issuer = rcgen::Issuer::from_params(&self.ca_params, &self.ca_key);
        let cert = params.signed_by(&key, &issuer).map_err(err)?;
        Ok(ThrowawayIdentity {
            cert_pem: cert.pem(),
            key_pem: Zeroizing::new(key.serialize_pem()),
        })
    }
}
