//! The HA listener and the active's side of the link (protocol-specs/ha.md §4–§7):
//! PAIR (on the server being made a standby), HELLO (FOLLOW, RESYNC, PROBE), the
//! record stream with its acknowledgements, the prober that finds a partner with a
//! higher epoch, and pairing as the active does it.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::link::{self, Conn, HaCodec, PairIdentity};
use super::{HaError, LinkState, Shared, lost, same_server, standby};
use crate::gateway::{FullCopy, ServerRole};
use crate::policy::console::ids;
use crate::proto::ha::rules::{
    FollowAnswer, Follower, Listener, Partnership, answer_follow, fenced, follows_prober,
    synchronized,
};
use crate::proto::ha::{
    HaBody, HaMessage, HaPurpose, HaReason, HaRole, HaStart, MAX_RECORDS, Secret, WireRecord,
};
use crate::proto::{ReplyStatus, ReturnCode};

/// How long a dialer may take to send its first message.
const FIRST_MESSAGE: Duration = Duration::from_secs(10);
/// TCP connect and TLS handshake deadline when dialling.
const DIAL: Duration = Duration::from_secs(5);
/// Connections the listener serves at once (a partner, a pairing, a probe).
const MAX_CONNECTIONS: usize = 4;
/// Bytes of records in one RECORDS message, past the first record.
const RECORDS_BYTES: usize = 8 * 1024 * 1024;

fn refused(reason: HaReason) -> ReplyStatus {
    ReplyStatus::new(ReturnCode::REFUSED, reason.0)
}

fn my_role(shared: &Shared) -> (HaRole, String) {
    match shared.gateway.role() {
        ServerRole::Active => (HaRole::ACTIVE, shared.local.clone()),
        ServerRole::Standby { active } => (HaRole::STANDBY, active),
    }
}

/// Accepts until the HA part stops.
pub(super) async fn listen(shared: Arc<Shared>, listener: TcpListener) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (stream, peer) = tokio::select! {
            () = shared.cancel.cancelled() => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    warn!(error = %e, "ha: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            debug!(%peer, "ha: connection refused: listener full");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let tls = shared.tls.lock().map(|t| t.clone());
        let Ok(tls) = tls else { continue };
        let shared = shared.clone();
        shared.tracker.clone().spawn(async move {
            let _permit = permit;
            match tls
                .accept(stream, crate::server::accept::TLS_HANDSHAKE_DEADLINE)
                .await
            {
                Ok(stream) => {
                    let certified = crate::tls::peer_has_certificate(&stream);
                    let conn = Framed::new(stream, HaCodec::new());
                    if let Err(e) = serve(&shared, conn, certified, peer).await {
                        debug!(%peer, error = %e, "ha: connection ended");
                    }
                }
                Err(e) => debug!(%peer, error = %e, "ha: TLS handshake failed"),
            }
        });
    }
}

/// One accepted connection: its first message says what it is.
async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    shared: &Arc<Shared>,
    mut conn: Conn<S>,
    certified: bool,
    peer: std::net::SocketAddr,
) -> Result<(), HaError> {
    let first = link::receive(&mut conn, FIRST_MESSAGE).await?;
    let correlation = first.correlation;
    match first.body {
        HaBody::Pair {
            user,
            password,
            active,
            key_check,
            ca_pem,
            cert_pem,
            key_pem,
            csm_ca_pem,
            csm_cert_pem,
            csm_key_pem,
        } => {
            let identity = PairIdentity {
                ca_pem,
                cert_pem,
                key_pem: zeroize::Zeroizing::new(key_pem.expose().to_owned()),
            };
            let csm = (!csm_cert_pem.is_empty()).then(|| standby::ActiveCsm {
                ca_pem: csm_ca_pem,
                cert_pem: csm_cert_pem,
                key_pem: zeroize::Zeroizing::new(csm_key_pem.expose().to_owned()),
            });
            let asked = standby::Pairing {
                user: &user,
                password: &password,
                active: &active,
                key_check,
                identity,
                csm,
            };
            let status = match standby::accept_pairing(shared, asked, peer).await {
                Ok(()) => ReplyStatus::OK,
                Err(reason) => refused(reason),
            };
            let reply = HaMessage {
                correlation,
                body: HaBody::PairReply { status },
            };
            link::send(&mut conn, reply).await
        }
        HaBody::Hello {
            role,
            purpose,
            epoch,
            last_seq,
            last_epoch,
            name,
        } => {
            let hello = Hello {
                correlation,
                role,
                purpose,
                epoch,
                last_seq,
                last_epoch,
                name,
            };
            if purpose == HaPurpose::PROBE {
                return answer_probe(shared, &mut conn, certified, &hello).await;
            }
            if !certified {
                warn!(%peer, "ha: FOLLOW without a certificate of the pair refused");
                return reply_refusal(shared, &mut conn, &hello, HaReason::NOT_PAIRED).await;
            }
            serve_standby(shared, conn, hello).await
        }
        other => Err(HaError::Link(format!(
            "{} is not a first message",
            other.name()
        ))),
    }
}

struct Hello {
    correlation: u32,
    role: HaRole,
    purpose: HaPurpose,
    epoch: u64,
    last_seq: u64,
    last_epoch: u64,
    name: String,
}

async fn reply_refusal<S: AsyncRead + AsyncWrite + Unpin>(
    shared: &Arc<Shared>,
    conn: &mut Conn<S>,
    hello: &Hello,
    reason: HaReason,
) -> Result<(), HaError> {
    let (role, name) = my_role(shared);
    let (epoch, _, _) = shared.position()?;
    let reply = HaMessage {
        correlation: hello.correlation,
        body: HaBody::HelloReply {
            status: refused(reason),
            role,
            epoch,
            start: HaStart::NONE,
            after: 0,
            name,
        },
    };
    link::send(conn, reply).await
}

/// Demotes this server when a partner shows a higher epoch as the active (ha.md §7).
async fn fence(shared: &Arc<Shared>, active: &str, epoch: u64) -> Result<(), HaError> {
    // Noted first: a takeover here later must begin above the epoch that fenced it.
    shared.gateway.note_epoch(epoch).await?;
    if let ServerRole::Active = shared.gateway.role() {
        if let Some(stream) = shared.stream.lock().ok().and_then(|mut s| s.take()) {
            stream.cancel();
        }
        shared.gateway.follow(active).await?;
        shared.set_relationship(|r| {
            r.standby = true;
            r.partner = Some(active.to_owned());
        })?;
        shared.set_link(
            LinkState::Disconnected,
            Some(format!("{active} is the active in epoch {epoch}")),
        );
        warn!(
            active,
            epoch, "ha: a higher epoch is active; this server stopped acting"
        );
        shared.announce(
            ids::HA_FENCED,
            format!(
                "This server stopped acting as the active server: {active} is the active server in epoch {epoch}."
            ),
            vec![active.to_owned(), epoch.to_string()],
        );
    }
    Ok(())
}

/// Stops acting when a storage system has seen a newer epoch of this pair than
/// this server's (the box refused a request as `FENCED`, ds8k.md §3.4): the
/// partner took over while this server could not hear of it (ha.md §7).
pub(super) async fn heed_the_box(shared: Arc<Shared>) {
    let gate = shared.gateway.ha_gate();
    let mut overtaken = gate.overtaken.subscribe();
    loop {
        tokio::select! {
            () = shared.cancel.cancelled() => return,
            r = overtaken.changed() => if r.is_err() { return },
        }
        let epoch = *overtaken.borrow_and_update();
        let mine = gate.fence.borrow().epoch;
        let partner = shared.relationship().partner;
        match partner {
            Some(active) if epoch > mine => {
                if let Err(e) = fence(&shared, &active, epoch).await {
                    warn!(error = %e, "ha: could not stop acting after the box's refusal");
                }
            }
            _ => {}
        }
    }
}

/// PROBE: who is the active? The answer is this server's role and epoch; a prober
/// that is the active in a higher epoch fences this server, and a standby that has
/// lost its active follows the prober (ha.md §7).
async fn answer_probe<S: AsyncRead + AsyncWrite + Unpin>(
    shared: &Arc<Shared>,
    conn: &mut Conn<S>,
    certified: bool,
    hello: &Hello,
) -> Result<(), HaError> {
    let (epoch, _, _) = shared.position()?;
    let partner = shared.relationship().partner;
    let is_partner = partner
        .as_deref()
        .is_some_and(|p| same_server(p, &hello.name));
    let i_am_active = matches!(shared.gateway.role(), ServerRole::Active);
    if certified
        && is_partner
        && fenced(
            i_am_active,
            epoch,
            hello.role == HaRole::ACTIVE,
            hello.epoch,
        )
    {
        fence(shared, &hello.name, hello.epoch).await?;
    }
    let (role, name) = my_role(shared);
    let reply = HaMessage {
        correlation: hello.correlation,
        body: HaBody::HelloReply {
            status: ReplyStatus::OK,
            role,
            epoch,
            start: HaStart::NONE,
            after: 0,
            name,
        },
    };
    link::send(conn, reply).await?;
    let i_am_standby = matches!(shared.gateway.role(), ServerRole::Standby { .. });
    if certified
        && is_partner
        && follows_prober(
            i_am_standby,
            epoch,
            hello.role == HaRole::ACTIVE,
            hello.epoch,
        )
    {
        // A standby (or a fenced active) follows the active that probed it.
        if let Ok(mut rel) = shared.relationship.lock() {
            rel.partner = Some(hello.name.clone());
        }
        standby::start_follower(shared);
    }
    Ok(())
}

/// FOLLOW or RESYNC from a certified standby: decide how the stream starts, then
/// stream until the link ends.
async fn serve_standby<S: AsyncRead + AsyncWrite + Unpin>(
    shared: &Arc<Shared>,
    mut conn: Conn<S>,
    hello: Hello,
) -> Result<(), HaError> {
    if !matches!(shared.gateway.role(), ServerRole::Active) {
        return reply_refusal(shared, &mut conn, &hello, HaReason::NOT_ACTIVE).await;
    }
    let (epoch, last, _) = shared.position()?;
    let rel = shared.relationship();
    let partnership = match &rel.partner {
        Some(p) if same_server(p, &hello.name) => Partnership::Partner,
        Some(_) => Partnership::Other,
        None if rel.removed.iter().any(|n| same_server(n, &hello.name)) => Partnership::Removed,
        None => Partnership::None,
    };
    let reader = shared
        .gateway
        .stream()
        .ok_or(crate::gateway::GatewayError::Stopped)?;
    let first_held = reader
        .first_seq()
        .map_err(|e| HaError::Link(e.to_string()))?;
    let epoch_at = |seq: u64| reader.epoch_at(seq).ok().flatten();
    let answer = answer_follow(
        &Listener {
            active: true,
            epoch,
            last_seq: last,
            first_held,
            partnership,
            epoch_at: &epoch_at,
        },
        &Follower {
            purpose: hello.purpose,
            epoch: hello.epoch,
            last_seq: hello.last_seq,
            last_epoch: hello.last_epoch,
        },
    );
    drop(reader);
    let resume = match answer {
        FollowAnswer::Refuse(reason) => {
            return reply_refusal(shared, &mut conn, &hello, reason).await;
        }
        FollowAnswer::ListenerIsStale => {
            // ha.md §7: the dialer knows a newer epoch than this server's: this
            // server is a stale active and stops acting.
            reply_refusal(shared, &mut conn, &hello, HaReason::HIGHER_EPOCH).await?;
            return fence(shared, "", hello.epoch).await;
        }
        FollowAnswer::Resume { after } => Some(after),
        FollowAnswer::FullCopy => None,
    };
    // One stream at a time: a standby that dials again replaces its old link.
    let mine = CancellationToken::new();
    if let Ok(mut slot) = shared.stream.lock()
        && let Some(old) = slot.replace(mine.clone())
    {
        old.cancel();
    }
    if rel.partner.is_none() {
        shared.set_relationship(|r| {
            r.partner = Some(hello.name.clone());
            r.standby = false;
        })?;
    }
    let (start, after, copy) = match resume {
        Some(after) => (HaStart::RESUME, after, None),
        None => {
            let copy = full_copy(shared).await?;
            (HaStart::FULL_COPY, copy.seq, Some(copy))
        }
    };
    let reply = HaMessage {
        correlation: hello.correlation,
        body: HaBody::HelloReply {
            status: ReplyStatus::OK,
            role: HaRole::ACTIVE,
            epoch,
            start,
            after,
            name: shared.local.clone(),
        },
    };
    link::send(&mut conn, reply).await?;
    shared.set_link(LinkState::CatchingUp, None);
    info!(standby = %hello.name, start = %start, after, "ha: standby connected");
    shared.announce(
        ids::HA_CONNECTED,
        format!("The standby server {} is connected.", hello.name),
        vec![hello.name.clone()],
    );
    if let Some(copy) = copy {
        send_copy(&mut conn, &copy).await?;
    }
    let result = stream(shared, &mut conn, after, &hello.name, &mine).await;
    // A link replaced by a newer one leaves the gate and the status to it.
    if !mine.is_cancelled() {
        shared.gateway.ha_gate().sync.send_replace(false);
        let why = match &result {
            Ok(()) => "the link was closed".to_owned(),
            Err(e) => e.to_string(),
        };
        lost(shared, &hello.name, &why);
    }
    result
}

/// A full copy of this server's store: a snapshot now, the epochs, and the audit
/// trail up to it (ha.md §5.2).
async fn full_copy(shared: &Arc<Shared>) -> Result<FullCopy, HaError> {
    shared.gateway.snapshot().await?;
    let reader = shared
        .gateway
        .stream()
        .ok_or(crate::gateway::GatewayError::Stopped)?;
    tokio::task::spawn_blocking(move || {
        let store = |e: crate::store::StoreError| HaError::Link(e.to_string());
        let (seq, state) = reader
            .snapshot_sealed()
            .map_err(store)?
            .ok_or_else(|| HaError::Link("no snapshot to copy".into()))?;
        Ok(FullCopy {
            seq,
            epochs: reader.epochs().map_err(store)?,
            audit: reader.audit_sealed_upto(seq).map_err(store)?,
            state,
        })
    })
    .await
    .map_err(|_| HaError::Link("the full copy's reader stopped".into()))?
}

async fn send_copy<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Conn<S>,
    copy: &FullCopy,
) -> Result<(), HaError> {
    let bytes = Bytes::from(link::encode_copy(copy));
    let parts = bytes.len().div_ceil(link::COPY_PART).max(1) as u32;
    for part in 0..parts {
        let from = part as usize * link::COPY_PART;
        let to = (from + link::COPY_PART).min(bytes.len());
        let message = HaMessage {
            correlation: 0,
            body: HaBody::Copy {
                seq: copy.seq,
                part,
                parts,
                data: bytes.slice(from..to),
            },
        };
        link::send(conn, message).await?;
    }
    Ok(())
}

/// Sends what the standby is missing as it becomes durable here, and follows its
/// acknowledgements and heartbeats, until the link fails or is replaced.
async fn stream<S: AsyncRead + AsyncWrite + Unpin>(
    shared: &Arc<Shared>,
    conn: &mut Conn<S>,
    mut sent: u64,
    standby: &str,
    mine: &CancellationToken,
) -> Result<(), HaError> {
    use futures_util::StreamExt;
    let gate = shared.gateway.ha_gate();
    gate.acked.send_replace(sent);
    let mut durable = gate.durable.subscribe();
    let mut role = shared.gateway.role_changes();
    let beat = Duration::from_millis(shared.config.heartbeat_ms.max(10));
    let dead = Duration::from_millis(shared.config.dead_after_ms.max(50));
    let mut heartbeat = tokio::time::interval(beat);
    let mut heard = shared.clock.tokio_now();
    let mut acked = sent;
    // ha.md §5.3: the standby is synchronised once it holds everything that was
    // stored here when the link came up; what follows is live traffic, which in
    // synchronous mode every answer waits for.
    let backlog = *durable.borrow();
    let mut waiting = std::collections::VecDeque::new();
    loop {
        let head = *durable.borrow_and_update();
        if sent < head {
            let reader = shared
                .gateway
                .stream()
                .ok_or(crate::gateway::GatewayError::Stopped)?;
            let after = sent;
            let batch = tokio::task::spawn_blocking(move || {
                reader.since_sealed(after, MAX_RECORDS, RECORDS_BYTES)
            })
            .await
            .map_err(|_| HaError::Link("the stream's reader stopped".into()))?
            .map_err(|e| HaError::Link(e.to_string()))?;
            if let Some(last) = batch.last() {
                sent = last.0;
            }
            let records = batch
                .into_iter()
                .map(|(seq, epoch, sealed)| WireRecord {
                    seq,
                    epoch,
                    sealed: Bytes::from(sealed),
                })
                .collect();
            link::send(
                conn,
                HaMessage {
                    correlation: 0,
                    body: HaBody::Records { records },
                },
            )
            .await?;
            note_behind(shared, &mut waiting, acked, sent);
            continue;
        }
        tokio::select! {
            () = mine.cancelled() => return Ok(()),
            () = shared.cancel.cancelled() => return Ok(()),
            r = role.changed() => {
                if r.is_err() || !matches!(*role.borrow(), ServerRole::Active) {
                    return Err(HaError::Link("this server is no longer the active".into()));
                }
            }
            r = durable.changed() => if r.is_err() { return Ok(()) },
            _ = heartbeat.tick() => {
                if shared.clock.tokio_now().saturating_duration_since(heard) > dead {
                    return Err(HaError::Link(format!("nothing heard for {} ms", dead.as_millis())));
                }
                let (epoch, last, _) = shared.position()?;
                link::send(conn, HaMessage {
                    correlation: 0,
                    body: HaBody::Heartbeat { role: HaRole::ACTIVE, epoch, last_seq: last },
                }).await?;
            }
            frame = conn.next() => {
                let message = match frame {
                    None => return Err(HaError::Link("the standby closed the connection".into())),
                    Some(Err(e)) => return Err(link::frame_error(e)),
                    Some(Ok(f)) => HaMessage::decode(&f).map_err(|e| HaError::Link(format!("bad message: {e}")))?,
                };
                heard = shared.clock.tokio_now();
                match message.body {
                    HaBody::Ack { seq } => {
                        if seq > sent {
                            return Err(HaError::Link(format!("ACK of {seq}, past the {sent} sent")));
                        }
                        acked = acked.max(seq);
                        gate.acked.send_replace(acked);
                        note_behind(shared, &mut waiting, acked, *gate.durable.borrow());
                        if synchronized(acked, backlog) && shared.link_state() != LinkState::Synchronized {
                            shared.set_link(LinkState::Synchronized, None);
                            gate.sync.send_replace(shared.config.ack == super::AckMode::Sync);
                            info!(standby, seq = acked, "ha: standby synchronized");
                            shared.announce(
                                ids::HA_SYNCHRONIZED,
                                format!("The standby server {standby} is synchronized."),
                                vec![standby.to_owned()],
                            );
                        }
                    }
                    HaBody::Heartbeat { epoch, .. } => {
                        let (mine_epoch, _, _) = shared.position()?;
                        if epoch > mine_epoch {
                            fence(shared, "", epoch).await?;
                            return Err(HaError::Link(format!("the standby knows a higher epoch ({epoch})")));
                        }
                    }
                    other => return Err(HaError::Link(format!("{} from a standby", other.name()))),
                }
            }
        }
    }
}

/// Keeps the time the standby's acknowledgement first fell behind.
/// `waiting` holds each durable head the stream saw, with when it saw it: the lag
/// is the age of the oldest one the standby has not acknowledged (ha.md §9).
fn note_behind(
    shared: &Shared,
    waiting: &mut std::collections::VecDeque<(u64, tokio::time::Instant)>,
    acked: u64,
    head: u64,
) {
    let now = shared.clock.tokio_now();
    if waiting.back().is_none_or(|(seq, _)| *seq < head) && head > acked {
        waiting.push_back((head, now));
    }
    while waiting.front().is_some_and(|(seq, _)| *seq <= acked) {
        waiting.pop_front();
    }
    if let Ok(mut link) = shared.link.lock() {
        link.behind_since = waiting.front().map(|(_, at)| *at);
    }
}

/// Dials `partner`'s HA port: TCP, then TLS within the dial deadline.
pub(super) async fn dial(
    partner: &str,
    tls: &crate::tls::ClientTls,
) -> Result<Conn<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>, HaError> {
    let tcp = tokio::time::timeout(DIAL, tokio::net::TcpStream::connect(partner))
        .await
        .map_err(|_| {
            HaError::Link(format!(
                "{partner} did not answer within {} s",
                DIAL.as_secs()
            ))
        })?
        .map_err(|e| HaError::Link(format!("{partner}: {e}")))?;
    let _ = tcp.set_nodelay(true);
    let stream = tls
        .connect(tcp, DIAL)
        .await
        .map_err(|e| HaError::Link(format!("{partner}: TLS: {e}")))?;
    Ok(Framed::new(stream, HaCodec::new()))
}

/// On an active with a partner and no standby connected: asks the partner every
/// few heartbeats who is active, so that a restarted or partitioned old active
/// learns of a takeover and stops, and a standby that lost its active follows
/// again (ha.md §7).
pub(super) async fn probe(shared: Arc<Shared>) {
    let every = Duration::from_millis(shared.config.heartbeat_ms.max(10) * 3);
    loop {
        tokio::select! {
            () = shared.cancel.cancelled() => return,
            () = tokio::time::sleep(every) => {}
            () = shared.wake.notified() => {}
        }
        let rel = shared.relationship();
        let Some(partner) = rel.partner.clone() else {
            continue;
        };
        let connected = matches!(
            shared.link_state(),
            LinkState::CatchingUp | LinkState::Synchronized
        );
        if connected || !matches!(shared.gateway.role(), ServerRole::Active) {
            continue;
        }
        let Some(identity) = shared.identity() else {
            continue;
        };
        if let Err(e) = probe_once(&shared, &partner, &identity).await {
            debug!(partner, error = %e, "ha: probe failed");
        }
    }
}

async fn probe_once(
    shared: &Arc<Shared>,
    partner: &str,
    identity: &PairIdentity,
) -> Result<(), HaError> {
    let tls = identity.dialer(partner)?;
    let mut conn = dial(partner, &tls).await?;
    let (epoch, last, last_epoch) = shared.position()?;
    link::send(
        &mut conn,
        HaMessage {
            correlation: 1,
            body: HaBody::Hello {
                role: HaRole::ACTIVE,
                purpose: HaPurpose::PROBE,
                epoch,
                last_seq: last,
                last_epoch,
                name: shared.local.clone(),
            },
        },
    )
    .await?;
    let reply = link::receive(&mut conn, DIAL).await?;
    let i_am_active = matches!(shared.gateway.role(), ServerRole::Active);
    if let HaBody::HelloReply {
        role,
        epoch: theirs,
        ..
    } = reply.body
        && fenced(i_am_active, epoch, role == HaRole::ACTIVE, theirs)
    {
        fence(shared, partner, theirs).await?;
    }
    Ok(())
}

/// setStandbyServer, on the active (ha.md §4.1): makes the pair's certificates,
/// sends PAIR with the standby's Administrator's credentials, and on success keeps
/// the relationship; the standby then dials in for a full copy.
pub(super) async fn pair_with(
    shared: &Arc<Shared>,
    server: &str,
    user: &str,
    password: &str,
) -> Result<String, HaError> {
    if !matches!(shared.gateway.role(), ServerRole::Active) {
        return Err(HaError::Refused(
            "setStandbyServer runs on the active server; this server is a standby".into(),
        ));
    }
    let rel = shared.relationship();
    if let Some(partner) = &rel.partner
        && !same_server(partner, server)
    {
        return Err(HaError::Refused(format!(
            "this server is in a relationship with {partner}; remove it first"
        )));
    }
    if same_server(server, &shared.local) {
        return Err(HaError::Refused(
            "a server cannot be its own standby".into(),
        ));
    }
    let (mine, theirs) = match shared.identity() {
        Some(id) if shared.config.tls.is_some() => (id.clone(), id),
        _ => PairIdentity::new_pair(&shared.local, server)?,
    };
    let tls = crate::tls::ClientTls::first_contact(&link::host_of(server))
        .map_err(|e| HaError::Refused(e.to_string()))?;
    // ha.md §2.5: a CSM certificate zgate made goes to the standby, so that clients
    // of this server trust it after a takeover.
    let (csm_ca_pem, csm_cert_pem, csm_key_pem) = match &shared.csm {
        Some(csm) => {
            let read = |p: &std::path::Path| {
                std::fs::read_to_string(p)
                    .map_err(|e| HaError::Refused(format!("{}: {e}", p.display())))
            };
            let key = crate::keyfile::read_private(&csm.key)
                .map_err(|e| HaError::Refused(e.to_string()))?;
            (read(&csm.ca)?, read(&csm.cert)?, Secret::new(&key))
        }
        None => (String::new(), String::new(), Secret::new("")),
    };
    let mut conn = dial(server, &tls).await?;
    link::send(
        &mut conn,
        HaMessage {
            correlation: 1,
            body: HaBody::Pair {
                user: user.to_owned(),
                password: Secret::new(password),
                active: shared.local.clone(),
                key_check: shared.key.check_value(),
                ca_pem: theirs.ca_pem.clone(),
                cert_pem: theirs.cert_pem.clone(),
                key_pem: Secret::new(&theirs.key_pem),
                csm_ca_pem,
                csm_cert_pem,
                csm_key_pem,
            },
        },
    )
    .await?;
    let reply = link::receive(&mut conn, Duration::from_secs(30)).await?;
    match reply.body {
        HaBody::PairReply { status } if status.is_success() => {}
        HaBody::PairReply { status } => {
            let why = match HaReason(status.reason) {
                HaReason::NOT_AUTHORIZED => {
                    format!(
                        "{server} refused the user or password (an Administrator of {server} is needed)"
                    )
                }
                HaReason::KEY_MISMATCH => format!(
                    "{server} holds another sealing key: give both servers the same key (store.key_file or store.key_env)"
                ),
                HaReason::OTHER_PARTNER => {
                    format!("{server} is in a relationship with another server")
                }
                other => format!("{server} refused: reason {:#06x}", other.0),
            };
            return Err(HaError::Refused(why));
        }
        other => return Err(HaError::Link(format!("{} in answer to PAIR", other.name()))),
    }
    shared.adopt_identity(mine)?;
    shared.set_relationship(|r| {
        r.partner = Some(server.to_owned());
        r.standby = false;
        r.full_copy = false;
        r.removed.retain(|n| !same_server(n, server));
    })?;
    shared.set_link(LinkState::Connecting, None);
    let text = format!("{server} is now the standby server of {}.", shared.local);
    shared.announce(
        ids::HA_PAIRED,
        text.clone(),
        vec![server.to_owned(), shared.local.clone()],
    );
    Ok(text)
}
