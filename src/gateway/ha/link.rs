//! What both ends of the HA link share (protocol-specs/ha.md §2–§5): the framed
//! connection, the pair's TLS identity, and the full copy's encoding.

use std::path::Path;
use std::time::Duration;

use bytes::{Buf, BufMut, BytesMut};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::codec::{Decoder, Encoder, Framed};
use zeroize::Zeroizing;

use super::HaError;
use crate::codec::frame::{Frame, FrameCodec, FrameError};
use crate::gateway::FullCopy;
use crate::proto::ha::{HA_MAX_BODY, HaMessage};

/// The frame layer with HA messages going out.
pub(super) struct HaCodec(FrameCodec);

impl HaCodec {
    pub(super) fn new() -> HaCodec {
        HaCodec(FrameCodec::new(HA_MAX_BODY))
    }
}

impl Decoder for HaCodec {
    type Item = Frame;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        self.0.decode(src)
    }
}

impl Encoder<HaMessage> for HaCodec {
    type Error = FrameError;

    fn encode(&mut self, message: HaMessage, dst: &mut BytesMut) -> Result<(), FrameError> {
        message.encode(dst);
        Ok(())
    }
}

/// One HA connection.
pub(super) type Conn<S> = Framed<S, HaCodec>;

/// Sends one message.
pub(super) async fn send<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Conn<S>,
    message: HaMessage,
) -> Result<(), HaError> {
    conn.send(message)
        .await
        .map_err(|e| HaError::Link(format!("sending: {e}")))
}

/// The next message, within `patience`: a frame that is not an HA message, a closed
/// connection or silence is an error that ends the link (ha.md §8).
pub(super) async fn receive<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Conn<S>,
    patience: Duration,
) -> Result<HaMessage, HaError> {
    match tokio::time::timeout(patience, conn.next()).await {
        Err(_) => Err(HaError::Link(format!(
            "nothing heard for {} ms",
            patience.as_millis()
        ))),
        Ok(None) => Err(HaError::Link("the partner closed the connection".into())),
        Ok(Some(Err(e))) => Err(frame_error(e)),
        Ok(Some(Ok(frame))) => {
            HaMessage::decode(&frame).map_err(|e| HaError::Link(format!("bad message: {e}")))
        }
    }
}

/// What a failed read of the link says: a partner that went away without TLS's
/// goodbye is a closed connection, not a bad frame.
pub(super) fn frame_error(e: FrameError) -> HaError {
    match e {
        FrameError::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            HaError::Link("the partner closed the connection".into())
        }
        FrameError::Io(io) => HaError::Link(format!("connection failed: {io}")),
        other => HaError::Link(format!("bad frame: {other}")),
    }
}

/// The pair's TLS identity (ha.md §2): its CA, this server's certificate and key.
#[derive(Clone)]
pub struct PairIdentity {
    /// The pair's CA certificate, PEM.
    pub ca_pem: String,
    /// This server's certificate, PEM.
    pub cert_pem: String,
    /// Its private key, PEM.
    pub key_pem: Zeroizing<String>,
}

impl std::fmt::Debug for PairIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PairIdentity")
            .field("key_pem", &"<redacted>")
            .finish_non_exhaustive()
    }
}

const CA_FILE: &str = "pair-ca.pem";
const CERT_FILE: &str = "pair-cert.pem";
const KEY_FILE: &str = "pair-key.pem";

impl PairIdentity {
    /// A new pair: a CA made for it, and certificates for both servers (each valid
    /// for its host name, `localhost` and `127.0.0.1`). The CA's key is not kept: a
    /// new pairing makes a new CA.
    pub(super) fn new_pair(
        active: &str,
        standby: &str,
    ) -> Result<(PairIdentity, PairIdentity), HaError> {
        let tls = |e: crate::tls::TlsError| HaError::Refused(format!("pair certificates: {e}"));
        let pki = crate::tls::ThrowawayPki::new("zgate HA pair CA").map_err(tls)?;
        let issue = |name: &str| -> Result<PairIdentity, HaError> {
            let host = host_of(name);
            let mut names = vec![host.as_str(), "localhost", "127.0.0.1"];
            names.dedup();
            let id = pki.issue(&names).map_err(tls)?;
            Ok(PairIdentity {
                ca_pem: pki.ca_pem.clone(),
                cert_pem: id.cert_pem,
                key_pem: Zeroizing::new(id.key_pem.to_string()),
            })
        };
        Ok((issue(active)?, issue(standby)?))
    }

    /// From the files a pairing wrote, if there are any.
    pub(super) fn load(dir: &Path) -> Result<Option<PairIdentity>, HaError> {
        let ca = dir.join(CA_FILE);
        if !ca.exists() {
            return Ok(None);
        }
        let read = |name: &str| {
            std::fs::read_to_string(dir.join(name))
                .map_err(|e| HaError::Refused(format!("{}: {e}", dir.join(name).display())))
        };
        let key = crate::keyfile::read_private(&dir.join(KEY_FILE))
            .map_err(|e| HaError::Refused(e.to_string()))?;
        Ok(Some(PairIdentity {
            ca_pem: read(CA_FILE)?,
            cert_pem: read(CERT_FILE)?,
            key_pem: Zeroizing::new(key.to_string()),
        }))
    }

    /// From the configuration's files (`[ha.tls]`).
    pub(super) fn from_files(files: &super::PairTlsFiles) -> Result<PairIdentity, HaError> {
        let read = |p: &Path| {
            std::fs::read_to_string(p)
                .map_err(|e| HaError::Refused(format!("{}: {e}", p.display())))
        };
        let key = crate::keyfile::read_private(&files.key)
            .map_err(|e| HaError::Refused(e.to_string()))?;
        Ok(PairIdentity {
            ca_pem: read(&files.ca)?,
            cert_pem: read(&files.cert)?,
            key_pem: Zeroizing::new(key.to_string()),
        })
    }

    /// The pair's fence domain on the storage systems (ds8k.md §3.4): the first 8
    /// bytes of the SHA-256 of the pair CA certificate's DER, never 0. Both servers
    /// hold the same CA, and a new pairing makes a new one.
    pub(super) fn fence_domain(&self) -> Result<u64, HaError> {
        use rustls_pki_types::CertificateDer;
        use rustls_pki_types::pem::PemObject;
        use sha2::Digest;
        let ca = CertificateDer::pem_slice_iter(self.ca_pem.as_bytes())
            .next()
            .ok_or_else(|| HaError::Refused("the pair's CA file holds no certificate".into()))?
            .map_err(|e| HaError::Refused(format!("the pair's CA certificate: {e}")))?;
        let digest = sha2::Sha256::digest(ca.as_ref());
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        Ok(u64::from_be_bytes(first).max(1))
    }

    /// Writes the identity to `dir` (the key owner-only).
    pub(super) fn save(&self, dir: &Path) -> Result<(), HaError> {
        let fail = |p: &Path, e: std::io::Error| HaError::Refused(format!("{}: {e}", p.display()));
        std::fs::create_dir_all(dir).map_err(|e| fail(dir, e))?;
        write_atomic(&dir.join(KEY_FILE), self.key_pem.as_bytes(), true)?;
        write_atomic(&dir.join(CERT_FILE), self.cert_pem.as_bytes(), false)?;
        write_atomic(&dir.join(CA_FILE), self.ca_pem.as_bytes(), false)?;
        Ok(())
    }

    /// The listener's TLS with this identity: client certificates of the pair are
    /// verified when presented.
    pub(super) fn listener(&self) -> Result<crate::tls::ServerTls, HaError> {
        crate::tls::pair_listener(
            self.cert_pem.as_bytes(),
            self.key_pem.as_bytes(),
            Some(self.ca_pem.as_bytes()),
        )
        .map_err(|e| HaError::Refused(format!("pair TLS: {e}")))
    }

    /// The dialer's TLS to `partner` with this identity (mutual TLS, ha.md §2.1).
    pub(super) fn dialer(&self, partner: &str) -> Result<crate::tls::ClientTls, HaError> {
        crate::tls::ClientTls::from_pem(
            self.ca_pem.as_bytes(),
            &host_of(partner),
            Some((self.cert_pem.as_bytes(), self.key_pem.as_bytes())),
        )
        .map_err(|e| HaError::Refused(format!("pair TLS: {e}")))
    }
}

/// Writes `bytes` to `path` durably: a temporary file, fsync, rename.
pub(super) fn write_atomic(path: &Path, bytes: &[u8], private: bool) -> Result<(), HaError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let fail = |e: std::io::Error| HaError::Refused(format!("{}: {e}", path.display()));
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(if private { 0o600 } else { 0o644 })
        .open(&tmp)
        .map_err(fail)?;
    f.write_all(bytes).map_err(fail)?;
    f.sync_all().map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(fail)?;
    Ok(())
}

/// The host part of `host:port` (or `[v6]:port`), or the whole name.
pub fn host_of(name: &str) -> String {
    if let Some(rest) = name.strip_prefix('[')
        && let Some((host, _)) = rest.split_once(']')
    {
        return host.to_owned();
    }
    match name.rsplit_once(':') {
        Some((host, port)) if port.parse::<u16>().is_ok() && !host.contains(':') => host.to_owned(),
        _ => name.to_owned(),
    }
}

/// `name` with `port` when it has none (CSM's HA port 9561 by default).
pub fn with_port(name: &str, port: Option<u16>) -> String {
    let has_port = host_of(name) != name;
    match (has_port, port) {
        (true, None) => name.to_owned(),
        (true, Some(p)) => format!("{}:{p}", host_of(name)),
        (false, p) => format!("{name}:{}", p.unwrap_or(super::HA_PORT)),
    }
}

/// The size of one COPY part (ha.md §5.2).
pub(super) const COPY_PART: usize = 1024 * 1024;
/// The most COPY parts a standby accepts (2 GiB).
pub(super) const MAX_COPY_PARTS: u32 = 2048;

/// A full copy as the COPY parts carry it (ha.md §5.2): `u64 seq`, `u32` epochs
/// then each `u64 epoch, u64 first`, `u32` audit records then each `u64 seq,
/// u32 length, sealed bytes`, then `u32 length` and the sealed state.
pub fn encode_copy(copy: &FullCopy) -> Vec<u8> {
    let mut out = BytesMut::with_capacity(copy.state.len() + 64);
    out.put_u64(copy.seq);
    out.put_u32(copy.epochs.len() as u32);
    for (e, first) in &copy.epochs {
        out.put_u64(*e);
        out.put_u64(*first);
    }
    out.put_u32(copy.audit.len() as u32);
    for (seq, bytes) in &copy.audit {
        out.put_u64(*seq);
        out.put_u32(bytes.len() as u32);
        out.put_slice(bytes);
    }
    out.put_u32(copy.state.len() as u32);
    out.put_slice(&copy.state);
    out.to_vec()
}

/// Reads a full copy; every count and length is checked against what is left.
pub fn decode_copy(mut b: &[u8]) -> Result<FullCopy, HaError> {
    let short = || HaError::Link("the full copy ends early".into());
    let need = |b: &[u8], n: usize| {
        if b.remaining() < n {
            Err(short())
        } else {
            Ok(())
        }
    };
    need(b, 12)?;
    let seq = b.get_u64();
    let n = b.get_u32() as usize;
    need(b, n.saturating_mul(16))?;
    let epochs = (0..n).map(|_| (b.get_u64(), b.get_u64())).collect();
    need(b, 4)?;
    let n = b.get_u32() as usize;
    let mut audit = Vec::with_capacity(n.min(b.remaining() / 12));
    for _ in 0..n {
        need(b, 12)?;
        let s = b.get_u64();
        let len = b.get_u32() as usize;
        need(b, len)?;
        audit.push((s, b[..len].to_vec()));
        b.advance(len);
    }
    need(b, 4)?;
    let len = b.get_u32() as usize;
    need(b, len)?;
    let state = b[..len].to_vec();
    b.advance(len);
    if b.has_remaining() {
        return Err(HaError::Link("bytes after the full copy's state".into()));
    }
    Ok(FullCopy {
        seq,
        epochs,
        audit,
        state,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn names_and_ports() {
        assert_eq!(host_of("127.0.0.1:9561"), "127.0.0.1");
        assert_eq!(host_of("csm-b"), "csm-b");
        assert_eq!(host_of("[::1]:9561"), "::1");
        assert_eq!(with_port("csm-b", None), "csm-b:9561");
        assert_eq!(with_port("csm-b", Some(19561)), "csm-b:19561");
        assert_eq!(with_port("127.0.0.1:4000", None), "127.0.0.1:4000");
    }

    #[test]
    fn a_full_copy_round_trips_and_a_cut_one_is_refused() {
        let copy = FullCopy {
            seq: 42,
            epochs: vec![(1, 1), (2, 30)],
            audit: vec![(3, b"12345678{}".to_vec())],
            state: b"state".to_vec(),
        };
        let bytes = encode_copy(&copy);
        let back = decode_copy(&bytes).unwrap();
        assert_eq!(
            (back.seq, back.epochs.clone(), back.audit.clone()),
            (42, copy.epochs.clone(), copy.audit.clone())
        );
        assert_eq!(back.state, copy.state);
        for cut in 0..bytes.len() {
            assert!(decode_copy(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut long = bytes.clone();
        long.push(0);
        assert!(decode_copy(&long).is_err());
    }
}
