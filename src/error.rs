//! The crate's top-level error: one variant per layer, each with its own typed error.

use crate::passticket::evaluator::ProfileError;
use crate::passticket::{InputError, Refusal};

/// Any error zgate reports to a caller of the library or to the CLI.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Bad input to PassTicket generation or evaluation (names the field).
    #[error(transparent)]
    PassTicketInput(#[from] InputError),
    /// A bad PTKTDATA profile definition.
    #[error(transparent)]
    Profile(#[from] ProfileError),
    /// A PassTicket logon was refused.
    #[error("logon refused: {0}")]
    Refused(#[from] Refusal),
    /// A configuration that cannot be used (names the file or field).
    #[error("configuration: {0}")]
    Config(String),
    /// A TLS set-up that cannot be used (names the file or the problem).
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// An I/O error from the operating system.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    /// True when the error was caused by what a peer or user sent (as opposed to a
    /// local fault): the caller should answer it, not retry it.
    pub fn is_peer_fault(&self) -> bool {
        matches!(self, Error::PassTicketInput(_) | Error::Refused(_))
    }

    /// True when the error is a timeout.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Io(e) if e.kind() == std::io::ErrorKind::TimedOut)
    }
}
