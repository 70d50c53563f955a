//! The standby's side of the link (protocol-specs/ha.md §4–§6): accepting PAIR,
//! following the active (records stored durably, then acknowledged; a full copy
//! installed whole or not at all), setServerAsStandby, and takeover.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::link::{self, PairIdentity};
use super::{HaError, LinkState, Shared, active, lost, same_server};
use crate::gateway::ServerRole;
use crate::policy::access::Role;
use crate::policy::console::ids;
use crate::proto::ha::{HaBody, HaMessage, HaPurpose, HaReason, HaRole, HaStart, Secret};

/// How long the active may take to answer HELLO (a full copy starts with a
/// snapshot of its state).
const HELLO_ANSWER: Duration = Duration::from_secs(60);
/// The longest pause between attempts to reach the active.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The active's CSM listener certificate, sent at pairing (ha.md §2.5).
pub(super) struct ActiveCsm {
    pub(super) ca_pem: String,
    pub(super) cert_pem: String,
    pub(super) key_pem: zeroize::Zeroizing<String>,
}

/// What a PAIR asks.
pub(super) struct Pairing<'a> {
    pub(super) user: &'a str,
    pub(super) password: &'a Secret,
    pub(super) active: &'a str,
    pub(super) key_check: [u8; 32],
    pub(super) identity: PairIdentity,
    pub(super) csm: Option<ActiveCsm>,
}

/// Takes the active's CSM certificate: its files replace this server's throwaway
/// ones and the listeners present it from the next handshake (ha.md §2.5). A server
/// with `[csm.tls]` keeps its own.
fn adopt_csm(shared: &Shared, csm: ActiveCsm) -> Result<(), HaError> {
    let Some(mine) = &shared.csm else {
        info!("ha: the configuration's CSM certificate is kept; the active's is not used");
        return Ok(());
    };
    mine.slot
        .replace(csm.cert_pem.as_bytes(), csm.key_pem.as_bytes())
        .map_err(|e| HaError::Refused(format!("the active's CSM certificate: {e}")))?;
    link::write_atomic(&mine.key, csm.key_pem.as_bytes(), true)?;
    link::write_atomic(&mine.cert, csm.cert_pem.as_bytes(), false)?;
    link::write_atomic(&mine.ca, csm.ca_pem.as_bytes(), false)?;
    Ok(())
}

/// PAIR on this server (ha.md §4.1): an Administrator of this server, the same
/// sealing key, and no other partner. Then this server is the dialer's standby:
/// its state will be replaced by a full copy.
pub(super) async fn accept_pairing(
    shared: &Arc<Shared>,
    asked: Pairing<'_>,
    peer: std::net::SocketAddr,
) -> Result<(), HaReason> {
    let Pairing {
        user,
        password,
        active,
        key_check,
        identity,
        csm,
    } = asked;
    let hash = shared
        .gateway
        .users()
        .read()
        .ok()
        .and_then(|u| u.get(user).map(|c| c.hash.clone()));
    let name = user.to_owned();
    let is_admin = shared
        .gateway
        .read(move |e| {
            e.state()
                .users
                .values()
                .any(|u| u.name == name && u.role == Role::Administrator)
        })
        .await
        .unwrap_or(false);
    let password = password.expose().to_owned();
    let matches = match hash {
        Some(hash) => tokio::task::spawn_blocking(move || {
            crate::gateway::passwords::verify_blocking(&hash, &password).unwrap_or(false)
        })
        .await
        .unwrap_or(false),
        None => false,
    };
    if !(matches && is_admin) {
        warn!(%peer, "ha: PAIR refused: not an Administrator's user and password");
        return Err(HaReason::NOT_AUTHORIZED);
    }
    if key_check != shared.key.check_value() {
        warn!(%peer, "ha: PAIR refused: the sealing keys differ");
        return Err(HaReason::KEY_MISMATCH);
    }
    let rel = shared.relationship();
    if let Some(partner) = &rel.partner
        && !same_server(partner, active)
    {
        warn!(%peer, partner, "ha: PAIR refused: in a relationship with another server");
        return Err(HaReason::OTHER_PARTNER);
    }
    let fail = |e: HaError| {
        warn!(%peer, error = %e, "ha: PAIR could not be carried out");
        HaReason::NOT_ACTIVE
    };
    shared.adopt_identity(identity).map_err(fail)?;
    if let Some(csm) = csm {
        adopt_csm(shared, csm).map_err(fail)?;
    }
    shared
        .gateway
        .follow(active)
        .await
        .map_err(|e| fail(e.into()))?;
    shared
        .set_relationship(|r| {
            r.partner = Some(active.to_owned());
            r.standby = true;
            r.full_copy = true;
            r.removed.retain(|n| !same_server(n, active));
        })
        .map_err(fail)?;
    shared.set_link(LinkState::Connecting, None);
    info!(active, "ha: this server is now a standby");
    shared.announce(
        ids::HA_PAIRED,
        format!("{} is now the standby server of {active}.", shared.local),
        vec![shared.local.clone(), active.to_owned()],
    );
    start_follower(shared);
    Ok(())
}

/// setServerAsStandby (ha.md §4.2): this server becomes the standby of
/// `active_server`, which must accept its certificate.
pub(super) async fn become_standby_of(
    shared: &Arc<Shared>,
    active_server: &str,
) -> Result<String, HaError> {
    if shared.identity().is_none() {
        return Err(HaError::Refused(
            "this server has no pair certificates: run setStandbyServer on the active server, or give both servers [ha.tls]".into(),
        ));
    }
    if same_server(active_server, &shared.local) {
        return Err(HaError::Refused(
            "a server cannot be its own standby".into(),
        ));
    }
    let rel = shared.relationship();
    if let Some(partner) = &rel.partner
        && !same_server(partner, active_server)
    {
        return Err(HaError::Refused(format!(
            "this server is in a relationship with {partner}; remove it first"
        )));
    }
    shared.gateway.follow(active_server).await?;
    shared.set_relationship(|r| {
        r.partner = Some(active_server.to_owned());
        r.standby = true;
        r.full_copy = true;
        r.removed.retain(|n| !same_server(n, active_server));
    })?;
    shared.set_link(LinkState::Connecting, None);
    start_follower(shared);
    let text = format!(
        "{} is now the standby server of {active_server}; its data is replaced by the active's.",
        shared.local
    );
    shared.announce(
        ids::HA_PAIRED,
        text.clone(),
        vec![shared.local.clone(), active_server.to_owned()],
    );
    Ok(text)
}

/// Takeover (ha.md §6): the follower stops, the engine's task becomes the active
/// in a new epoch, and the old active is fenced when it is next heard from.
pub(super) async fn take_over(shared: &Arc<Shared>) -> Result<String, HaError> {
    let ServerRole::Standby { active } = shared.gateway.role() else {
        return Err(HaError::Refused(
            "takeover runs on the standby server; this server is the active".into(),
        ));
    };
    stop_follower(shared);
    let epoch = shared.gateway.take_over().await?;
    shared.set_relationship(|r| {
        r.standby = false;
        r.full_copy = false;
    })?;
    shared.set_link(
        LinkState::Disconnected,
        Some(format!("took over from {active}")),
    );
    let text = format!(
        "This server took over as the active server in epoch {epoch} (it was the standby of {active})."
    );
    info!(epoch, old = %active, "ha: took over");
    shared.announce(
        ids::HA_TAKEOVER,
        text.clone(),
        vec![epoch.to_string(), active],
    );
    shared.wake.notify_waiters();
    Ok(text)
}

/// Starts following the partner, unless a follower runs already.
pub(super) fn start_follower(shared: &Arc<Shared>) {
    let token = CancellationToken::new();
    if let Ok(mut slot) = shared.follower.lock() {
        if slot.as_ref().is_some_and(|t| !t.is_cancelled()) {
            shared.wake.notify_waiters();
            return;
        }
        *slot = Some(token.clone());
    }
    shared.tracker.spawn(follow_loop(shared.clone(), token));
}

/// Stops the follower.
pub(super) fn stop_follower(shared: &Shared) {
    if let Some(token) = shared.follower.lock().ok().and_then(|mut s| s.take()) {
        token.cancel();
    }
}

async fn follow_loop(shared: Arc<Shared>, token: CancellationToken) {
    let mut backoff = Duration::from_millis(100);
    loop {
        if token.is_cancelled() || shared.cancel.is_cancelled() {
            return;
        }
        if !matches!(shared.gateway.role(), ServerRole::Standby { .. }) {
            return;
        }
        let Some(partner) = shared.relationship().partner else {
            return;
        };
        let mut connected = false;
        if let Err(e) = follow_once(&shared, &partner, &token, &mut connected).await {
            lost(&shared, &partner, &e.to_string());
        }
        if connected {
            backoff = Duration::from_millis(100);
        }
        tokio::select! {
            () = token.cancelled() => return,
            () = shared.cancel.cancelled() => return,
            () = tokio::time::sleep(backoff) => {}
            () = shared.wake.notified() => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// A full copy arriving in parts.
#[derive(Default)]
struct Arriving {
    seq: u64,
    parts: u32,
    next: u32,
    bytes: Vec<u8>,
}

/// One connection to the active: HELLO, then records and copies until the link
/// fails or this server stops following.
async fn follow_once(
    shared: &Arc<Shared>,
    partner: &str,
    token: &CancellationToken,
    connected: &mut bool,
) -> Result<(), HaError> {
    let identity = shared
        .identity()
        .ok_or_else(|| HaError::Refused("this server has no pair certificates".into()))?;
    let tls = identity.dialer(partner)?;
    if shared.link_state() != LinkState::Disconnected {
        shared.set_link(LinkState::Connecting, None);
    }
    let mut conn = active::dial(partner, &tls).await?;
    let (epoch, last, last_epoch) = shared.position()?;
    let purpose = if shared.relationship().full_copy {
        HaPurpose::RESYNC
    } else {
        HaPurpose::FOLLOW
    };
    link::send(
        &mut conn,
        HaMessage {
            correlation: 1,
            body: HaBody::Hello {
                role: HaRole::STANDBY,
                purpose,
                epoch,
                last_seq: last,
                last_epoch,
                name: shared.local.clone(),
            },
        },
    )
    .await?;
    let reply = link::receive(&mut conn, HELLO_ANSWER).await?;
    let HaBody::HelloReply {
        status,
        epoch: theirs,
        start,
        after,
        name,
        ..
    } = reply.body
    else {
        return Err(HaError::Link(format!(
            "{} in answer to HELLO",
            reply.body.name()
        )));
    };
    if !status.is_success() {
        return Err(HaError::Link(match HaReason(status.reason) {
            HaReason::NOT_ACTIVE if name.is_empty() => {
                format!("{partner} is not the active server")
            }
            HaReason::NOT_ACTIVE => {
                format!("{partner} is not the active server (it follows {name})")
            }
            HaReason::OTHER_PARTNER => {
                format!("{partner} is in a relationship with another server")
            }
            HaReason::NOT_PAIRED => format!("{partner} did not accept this server's certificate"),
            HaReason::HIGHER_EPOCH => {
                format!("{partner} is an older active (epoch {theirs}); it stops")
            }
            other => format!("{partner} refused: reason {:#06x}", other.0),
        }));
    }
    if theirs > epoch {
        shared.gateway.note_epoch(theirs).await?;
    }
    if theirs < epoch {
        return Err(HaError::Link(format!(
            "{partner} is in epoch {theirs}, older than this server's {epoch}: records from it are refused"
        )));
    }
    if start == HaStart::RESUME && after != last {
        return Err(HaError::Link(format!(
            "{partner} resumes after {after}, but this server holds up to {last}"
        )));
    }
    *connected = true;
    shared.set_link(LinkState::CatchingUp, None);
    info!(active = %partner, start = %start, after, "ha: following the active");
    shared.announce(
        ids::HA_CONNECTED,
        format!("This standby server is connected to the active server {partner}."),
        vec![partner.to_owned()],
    );
    let beat = Duration::from_millis(shared.config.heartbeat_ms.max(10));
    let dead = Duration::from_millis(shared.config.dead_after_ms.max(50));
    let mut heartbeat = tokio::time::interval(beat);
    let mut arriving = Arriving::default();
    let mut stored = if start == HaStart::FULL_COPY { 0 } else { last };
    let mut copying = start == HaStart::FULL_COPY;
    let mut ahead = std::collections::VecDeque::new();
    loop {
        tokio::select! {
            () = token.cancelled() => return Ok(()),
            () = shared.cancel.cancelled() => return Ok(()),
            _ = heartbeat.tick() => {
                link::send(&mut conn, HaMessage {
                    correlation: 0,
                    body: HaBody::Heartbeat { role: HaRole::STANDBY, epoch: theirs, last_seq: stored },
                }).await?;
            }
            message = next_message(&mut conn, &mut ahead, dead) => {
                match message?.body {
                    HaBody::Records { records } => {
                        if copying {
                            return Err(HaError::Link("records before the full copy was complete".into()));
                        }
                        let mut batch: Vec<(u64, u64, Vec<u8>)> = records
                            .into_iter()
                            .map(|r| (r.seq, r.epoch, r.sealed.to_vec()))
                            .collect();
                        // RECORDS that arrived meanwhile are stored with these, in one
                        // durable transaction (one fsync for all, ha.md §5.3).
                        while let Some(Some(Ok(frame))) = futures_util::FutureExt::now_or_never(
                            futures_util::StreamExt::next(&mut conn),
                        ) {
                            let more = HaMessage::decode(&frame)
                                .map_err(|e| HaError::Link(format!("bad message: {e}")))?;
                            match more.body {
                                HaBody::Records { records } if batch.len() < 65_536 => batch
                                    .extend(records.into_iter().map(|r| (r.seq, r.epoch, r.sealed.to_vec()))),
                                _ => {
                                    ahead.push_back(more);
                                    break;
                                }
                            }
                        }
                        if batch.iter().any(|r| r.1 > theirs) {
                            return Err(HaError::Link("a record of an epoch newer than the active's".into()));
                        }
                        match shared.gateway.replicate(batch).await {
                            Ok(seq) => {
                                stored = seq;
                                link::send(&mut conn, HaMessage { correlation: 0, body: HaBody::Ack { seq } }).await?;
                            }
                            Err(e) => {
                                // ha.md §5.4: a record that does not follow, is of an
                                // older epoch or is damaged is refused; the next link
                                // asks for a full copy.
                                warn!(error = %e, "ha: replicated records refused; a full copy follows");
                                shared.set_relationship(|r| r.full_copy = true)?;
                                return Err(HaError::Link(format!("records refused: {e}")));
                            }
                        }
                    }
                    HaBody::Copy { seq, part, parts, data } => {
                        if part == 0 {
                            arriving = Arriving { seq, parts, next: 0, bytes: Vec::new() };
                        }
                        if parts > link::MAX_COPY_PARTS || part != arriving.next || parts != arriving.parts || seq != arriving.seq {
                            return Err(HaError::Link(format!("COPY part {part}/{parts} out of order")));
                        }
                        arriving.bytes.extend_from_slice(&data);
                        arriving.next += 1;
                        if arriving.next == arriving.parts {
                            let copy = link::decode_copy(&std::mem::take(&mut arriving.bytes))?;
                            let seq = shared.gateway.install(copy).await?;
                            shared.set_relationship(|r| r.full_copy = false)?;
                            stored = seq;
                            copying = false;
                            info!(seq, "ha: full copy installed");
                            link::send(&mut conn, HaMessage { correlation: 0, body: HaBody::Ack { seq } }).await?;
                        }
                    }
                    HaBody::Heartbeat { role, epoch: e, last_seq } => {
                        if role != HaRole::ACTIVE || e < theirs {
                            return Err(HaError::Link(format!("{partner} is no longer the active in epoch {theirs}")));
                        }
                        if !copying && stored >= last_seq && shared.link_state() != LinkState::Synchronized {
                            shared.set_link(LinkState::Synchronized, None);
                        }
                    }
                    other => return Err(HaError::Link(format!("{} from the active", other.name()))),
                }
            }
        }
    }
}

/// The next message: one read ahead while merging RECORDS, else from the link.
async fn next_message<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    conn: &mut link::Conn<S>,
    ahead: &mut std::collections::VecDeque<HaMessage>,
    patience: Duration,
) -> Result<HaMessage, HaError> {
    match ahead.pop_front() {
        Some(m) => Ok(m),
        None => link::receive(conn, patience).await,
    }
}
