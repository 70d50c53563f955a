//! The logon exchange shared by every protocol (z/OS `LOGON`, z/TPF `SIGNON`, DS8000 `LOGON`):
//! the same fields under each protocol's own message number (spec:
//! protocol-specs/zos-hyperswap.md §3.1, protocol-specs/ztpf.md §3.1).

use bytes::{BufMut, BytesMut};
use zeroize::Zeroizing;

use crate::codec::ebcdic;
use crate::codec::fields::{DecodeError, Ebcdic, FieldReader, put_count};
use crate::proto::ReplyStatus;
use crate::wire_enum;

/// The one reason code a client gets for any refused credential (unknown user, wrong
/// password, bad, expired, future or replayed ticket, revoked or protected user), with
/// RACF return code 8, so that the wire does not tell which user ids exist; the server
/// keeps the precise reason in its log and records (spec: passticket.md §4.7).
pub const NOT_AUTHORIZED: u16 = 0x0100;

/// Longest credential, in characters (RACF passphrases are 9 to 100).
pub const MAX_CREDENTIAL: usize = 100;

wire_enum! {
    /// What the logon credential is (zos-hyperswap.md §3.1).
    pub struct CredentialKind(u8) {
        /// RACF password, 1 to 8 characters.
        PASSWORD = 1,
        /// RACF password phrase, 9 to 100 characters.
        PASSPHRASE = 2,
        /// RACF PassTicket, 8 characters.
        PASSTICKET = 3,
    }
}

/// A logon credential. Secret: redacted in `Debug`, zeroized on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential(pub(crate) Zeroizing<String>);

impl Credential {
    /// Wraps `text` (at most [`MAX_CREDENTIAL`] ISO-8859-1 characters).
    pub fn new(text: &str) -> Option<Self> {
        let ok = text.chars().count() <= MAX_CREDENTIAL
            && text.chars().all(|c| ebcdic::from_char(c).is_some());
        ok.then(|| Credential(Zeroizing::new(text.to_string())))
    }

    /// The secret text.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credential(<redacted>)")
    }
}

/// Logon request: z/OS `LOGON`, z/TPF `SIGNON`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogonRequest {
    /// RACF user ID.
    pub user: Ebcdic<8>,
    /// Application name (PTKTDATA profile), `IOSHMCSM` for CSM.
    pub appl: Ebcdic<8>,
    /// What `credential` is.
    pub kind: CredentialKind,
    /// Heartbeat interval the client proposes, seconds (0: the host chooses).
    pub heartbeat_secs: u16,
    /// Password, passphrase or PassTicket.
    pub credential: Credential,
}

/// Logon reply: z/OS `LOGON`, z/TPF `SIGNON`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogonReply {
    /// Outcome.
    pub status: ReplyStatus,
    /// RACF `RACROUTE REQUEST=VERIFY`-style return code (0 on success).
    pub racf_rc: u16,
    /// Session id chosen by the host (0 when refused).
    pub session_id: u32,
    /// Heartbeat interval both sides use, seconds.
    pub heartbeat_secs: u16,
    /// What the system belongs to: sysplex (z/OS), complex (z/TPF) or storage image
    /// serial (DS8000).
    pub domain: Ebcdic<8>,
    /// System name.
    pub system: Ebcdic<8>,
}

impl LogonRequest {
    /// Reads the fields of a logon request body (the caller checks the end of the body).
    pub(crate) fn read(r: &mut FieldReader<'_>) -> Result<Self, DecodeError> {
        let user = r.ebcdic("user")?;
        let appl = r.ebcdic("appl")?;
        let kind = CredentialKind(r.u8("credential_kind")?);
        r.reserved_u8("reserved")?;
        let heartbeat_secs = r.u16("heartbeat_secs")?;
        let len = r.count("credential_length", MAX_CREDENTIAL)?;
        let raw = r.bytes("credential", len)?;
        let credential = Credential(Zeroizing::new(ebcdic::decode(raw)));
        Ok(LogonRequest {
            user,
            appl,
            kind,
            heartbeat_secs,
            credential,
        })
    }

    /// Appends the body.
    pub(crate) fn put(&self, dst: &mut BytesMut) {
        self.user.put(dst);
        self.appl.put(dst);
        dst.put_u8(self.kind.0);
        dst.put_u8(0);
        dst.put_u16(self.heartbeat_secs);
        let text = self.credential.expose();
        put_count(dst, text.chars().count());
        for c in text.chars() {
            dst.put_u8(ebcdic::from_char(c).unwrap_or(ebcdic::EBCDIC_BLANK));
        }
    }
}

impl LogonReply {
    /// A refusal: RC 8, `reason`, the RACF-style return code, no session.
    pub fn refused(reason: u16, racf_rc: u16) -> Self {
        LogonReply {
            status: ReplyStatus::new(crate::proto::ReturnCode::REFUSED, reason),
            racf_rc,
            session_id: 0,
            heartbeat_secs: 0,
            domain: Ebcdic::default(),
            system: Ebcdic::default(),
        }
    }

    pub(crate) fn read(r: &mut FieldReader<'_>) -> Result<Self, DecodeError> {
        Ok(LogonReply {
            status: ReplyStatus::read(r)?,
            racf_rc: r.u16("racf_rc")?,
            session_id: r.u32("session_id")?,
            heartbeat_secs: r.u16("heartbeat_secs")?,
            domain: r.ebcdic("domain")?,
            system: r.ebcdic("system")?,
        })
    }

    pub(crate) fn put(&self, dst: &mut BytesMut) {
        self.status.put(dst);
        dst.put_u16(self.racf_rc);
        dst.put_u32(self.session_id);
        dst.put_u16(self.heartbeat_secs);
        self.domain.put(dst);
        self.system.put(dst);
    }
}
