//! Secrets at rest (`protocol-specs/store.md` §4): storage-system passwords, host
//! passwords, passphrases and PassTicket keys are sealed with ChaCha20-Poly1305 under
//! a 256-bit key that the operator provides (a file only its owner may read, or an
//! environment variable), before they reach the engine, the journal or a standby.
//! Each secret is bound to the object it belongs to (the associated data), so a
//! sealed password copied onto another object does not open.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use zeroize::{Zeroize, Zeroizing};

use crate::policy::inventory::Sealed;

/// Format byte of a sealed secret.
const VERSION: u8 = 1;
const NONCE_LEN: usize = 12;
/// What the associated data starts with.
const CONTEXT: &[u8] = b"zgate-secret-v1\0";

/// Why a secret cannot be sealed or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealingError {
    /// The key is not 32 bytes of hex.
    #[error("the sealing key must be 64 hex digits (32 bytes)")]
    BadKey,
    /// The key source could not be read.
    #[error("sealing key: {0}")]
    Source(String),
    /// The sealed bytes are not ours, were altered, or belong to another object or key.
    #[error(
        "sealed secret for {0} does not open (altered, moved from another object, or another key)"
    )]
    Opening(String),
    /// The system's random source failed.
    #[error("no randomness for a nonce")]
    Random,
}

/// The operator's key. `Debug` never shows it; it is zeroed on drop.
pub struct SealingKey([u8; 32]);

impl std::fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealingKey(<redacted>)")
    }
}

impl Drop for SealingKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl SealingKey {
    /// A key from 64 hex digits.
    pub fn from_hex(text: &str) -> Result<SealingKey, SealingError> {
        let bytes = Zeroizing::new(hex::decode(text.trim()).map_err(|_| SealingError::BadKey)?);
        let key: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| SealingError::BadKey)?;
        Ok(SealingKey(key))
    }

    /// A key from a file that only its owner may read (mode 0600 or stricter).
    pub fn from_file(path: &std::path::Path) -> Result<SealingKey, SealingError> {
        let text =
            crate::keyfile::read_private(path).map_err(|e| SealingError::Source(e.to_string()))?;
        SealingKey::from_hex(&text)
    }

    /// A key from an environment variable holding 64 hex digits.
    pub fn from_env(name: &str) -> Result<SealingKey, SealingError> {
        let text = Zeroizing::new(
            std::env::var(name).map_err(|_| SealingError::Source(format!("{name} is not set")))?,
        );
        SealingKey::from_hex(&text)
    }

    /// A fresh random key (for `zgate` to print once when asked, and for tests).
    pub fn generate() -> Result<SealingKey, SealingError> {
        let mut key = [0u8; 32];
        getrandom::getrandom(&mut key).map_err(|_| SealingError::Random)?;
        Ok(SealingKey(key))
    }

    /// The key as hex, for writing it to a file once.
    pub fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hex::encode(self.0))
    }

    /// Tells whether two servers hold the same key without showing it: HMAC-SHA-256
    /// under the key of the label `zgate-ha-key-check-v1` (ha.md §2.3).
    pub fn check_value(&self) -> [u8; 32] {
        use hmac::Mac;
        // HMAC takes a key of any length; were it ever refused, the all-zero value
        // matches no real key's, so pairing would refuse (KEY_MISMATCH), never pass.
        match <hmac::Hmac<sha2::Sha256> as hmac::KeyInit>::new_from_slice(&self.0) {
            Ok(mut mac) => {
                mac.update(b"zgate-ha-key-check-v1");
                mac.finalize().into_bytes().into()
            }
            Err(_) => [0; 32],
        }
    }

    fn cipher(&self) -> ChaCha20Poly1305 {
        ChaCha20Poly1305::new(Key::from_slice(&self.0))
    }

    /// Seals `secret` for `object` (e.g. `DS8000:BOX:2107.75ABC01 password`).
    pub fn seal(&self, object: &str, secret: &[u8]) -> Result<Sealed, SealingError> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::getrandom(&mut nonce).map_err(|_| SealingError::Random)?;
        let aad = associated(object);
        let ciphertext = self
            .cipher()
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: secret,
                    aad: &aad,
                },
            )
            .map_err(|_| SealingError::Opening(object.to_owned()))?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        Ok(Sealed(out))
    }

    /// Opens a secret sealed for `object`.
    pub fn open(&self, object: &str, sealed: &Sealed) -> Result<Zeroizing<Vec<u8>>, SealingError> {
        let bytes = &sealed.0;
        if bytes.len() < 1 + NONCE_LEN + 16 || bytes[0] != VERSION {
            return Err(SealingError::Opening(object.to_owned()));
        }
        let (nonce, ciphertext) = bytes[1..].split_at(NONCE_LEN);
        let aad = associated(object);
        self.cipher()
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| SealingError::Opening(object.to_owned()))
    }
}

fn associated(object: &str) -> Vec<u8> {
    let mut aad = CONTEXT.to_vec();
    aad.extend_from_slice(object.as_bytes());
    aad
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn seals_opens_and_binds_to_the_object() {
        let key = SealingKey::generate().unwrap();
        let sealed = key.seal("SYSA password", b"s3cret").unwrap();
        assert!(
            !sealed.0.windows(6).any(|w| w == b"s3cret"),
            "plain text in the sealed bytes"
        );
        assert_eq!(&key.open("SYSA password", &sealed).unwrap()[..], b"s3cret");
        // Another object, another key, an altered byte: none opens.
        assert!(key.open("SYSB password", &sealed).is_err());
        let other = SealingKey::generate().unwrap();
        assert!(other.open("SYSA password", &sealed).is_err());
        let mut altered = sealed.clone();
        let last = altered.0.len() - 1;
        altered.0[last] ^= 1;
        assert!(key.open("SYSA password", &altered).is_err());
        // Two seals of one secret differ (fresh nonce).
        assert_ne!(key.seal("SYSA password", b"s3cret").unwrap(), sealed);
        // The key never shows.
        assert_eq!(format!("{key:?}"), "SealingKey(<redacted>)");
        assert!(format!("{sealed:?}").starts_with("Sealed("));
    }

    #[test]
    fn keys_come_from_hex_or_a_private_file() {
        use std::os::unix::fs::PermissionsExt;
        let key = SealingKey::generate().unwrap();
        let again = SealingKey::from_hex(&key.to_hex()).unwrap();
        let sealed = key.seal("x", b"y").unwrap();
        assert_eq!(&again.open("x", &sealed).unwrap()[..], b"y");
        assert_eq!(
            SealingKey::from_hex("abcd").unwrap_err(),
            SealingError::BadKey
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sealing.key");
        std::fs::write(&path, key.to_hex().as_bytes()).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = SealingKey::from_file(&path).unwrap_err();
        assert!(err.to_string().contains("chmod 600"), "{err}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let from_file = SealingKey::from_file(&path).unwrap();
        assert_eq!(&from_file.open("x", &sealed).unwrap()[..], b"y");
    }
}
