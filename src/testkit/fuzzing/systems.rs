//! The emulated systems' pure models under arbitrary requests: the z/OS HyperSwap
//! state machine and IOS path, the z/TPF complex, the DS8000's HMC (wire request →
//! storage operation, any ids and sizes), and their RACF-style logon decision.
//!
//! Requests are built from the input out of a small vocabulary (two serials, a few
//! volumes, two session names), so that the fuzzer reaches loaded configurations,
//! swaps and storage refusals instead of failing to parse.

use crate::codec::fields::Ebcdic;
use crate::proto::logon::{Credential, CredentialKind, LogonRequest};
use crate::proto::session::{LogonDecision, ServerBackend};
use crate::proto::zos::{HyperSwapState, Zos, ZosBody};
use crate::proto::ztpf::{Ztpf, ZtpfBody};
use crate::proto::{
    FrameKind, HostFlashOptions, ReplyStatus, ReturnCode, VolumePair, VolumeRef, WireBody,
};

use super::{Input, Reached};

const SERIALS: [&str; 2] = ["75FA120", "75XX999"];
const SESSIONS: [&str; 2] = ["HSPROD", "OTHER"];

/// The test keys every fuzzed system's profiles use.
fn env(var: &str) -> Option<String> {
    match var {
        "LEGACY" => Some("0123456789ABCDEF".into()),
        "ENHANCED" => Some("00112233445566778899AABBCCDDEEFF".repeat(2)),
        _ => None,
    }
}

fn volume(input: &mut Input<'_>) -> VolumeRef {
    let b = input.byte();
    VolumeRef {
        storage: Ebcdic::new(SERIALS[usize::from(b >> 7)]).unwrap_or_default(),
        volume: 0x3000 | u16::from(b & 0x0F) | (u16::from(b & 0x30) << 4),
        device: u16::from(b),
    }
}

fn volumes(input: &mut Input<'_>) -> Vec<VolumeRef> {
    let n = usize::from(input.byte() % 4) + 1;
    (0..n).map(|_| volume(input)).collect()
}

fn pairs(input: &mut Input<'_>) -> Vec<VolumePair> {
    let n = usize::from(input.byte() % 3) + 1;
    (0..n)
        .map(|_| VolumePair {
            first: volume(input),
            second: volume(input),
        })
        .collect()
}

fn session(input: &mut Input<'_>) -> Ebcdic<16> {
    Ebcdic::new(SESSIONS[usize::from(input.byte() & 1)]).unwrap_or_default()
}

fn logon(input: &mut Input<'_>) -> LogonRequest {
    const USERS: [&str; 4] = ["HOSTUSR", "OPER1", "CSMTPF", "NOBODY"];
    const CREDENTIALS: [&str; 4] = ["SECRET1", "WRONG1", "E9QEUZOI", "A-PASSPHRASE-LONG"];
    let b = input.byte();
    LogonRequest {
        user: Ebcdic::new(USERS[usize::from(b & 3)]).unwrap_or_default(),
        appl: Ebcdic::new(if b & 4 == 0 { "IOSHMCSM" } else { "ZTPFCSM" }).unwrap_or_default(),
        kind: CredentialKind(input.byte() % 4),
        heartbeat_secs: 30,
        credential: Credential::new(CREDENTIALS[usize::from((b >> 3) & 3)])
            .unwrap_or_else(|| unreachable!("the credentials above are valid")),
    }
}

/// The reply must be the request's own reply type (framing.md §4).
fn check_reply<B: WireBody + std::fmt::Debug>(request: &B, reply: &Result<B, ReplyStatus>) {
    if let Ok(reply) = reply {
        let (t, kind) = reply.wire_type();
        assert_eq!(
            (t, kind),
            (request.wire_type().0, FrameKind::Reply),
            "{request:?} answered with {reply:?}"
        );
    }
}

/// Security set-up shared by the fuzzed systems (TOML as an operator writes it).
const SECURITY: &str = r#"
revoke_after = 3
[[users]]
user = "HOSTUSR"
permits = ["FLASH", "SGC_BACKUP", "HYPERSWAP"]
[[users]]
user = "OPER1"
password_hash = "$argon2id$v=19$m=256,t=1,p=1$dPSvPsnwvszeWFQcHoNUtQ$VkHyf3shwuBN9RYKSA5exsDDhoO9YAOy2Lqxr89Cn1o"
[[users]]
user = "CSMTPF"
permits = ["FLASH", "SGC_BACKUP"]
[[ptktdata]]
name = "IOSHMCSM"
legacy_key_env = "LEGACY"
enhanced_key_env = "ENHANCED"
[[ptktdata]]
name = "ZTPFCSM"
enhanced_key_env = "ENHANCED"
"#;

/// The emulated z/OS: HyperSwap load/enable/disable/swap, primary failures, FLASH and
/// SGC_BACKUP, logons. Invariants: replies have their request's type; HyperSwap
/// keeps `NO_CONFIG` exactly while no configuration is loaded, the active site is 1
/// or 2 with one, and a swap or failure while enabled flips it.
pub fn zos_system(data: &[u8]) -> Reached {
    let mut reached = Reached::new();
    let Ok(cfg) = toml::from_str::<crate::sim::zos::ZosSystemConfig>(SECURITY) else {
        return reached;
    };
    let Ok(mut system) = crate::sim::zos::ZosSystem::with_keys(&cfg, env) else {
        panic!("the fuzz z/OS configuration is valid");
    };
    let mut input = Input(data);
    let mut now = 1_700_000_000u64;
    while !input.0.is_empty() {
        let op = input.byte();
        let body = match op % 12 {
            0 => ZosBody::QuerySystemRequest,
            1 => ZosBody::LoadConfigRequest {
                session: session(&mut input),
                pairs: pairs(&mut input),
            },
            2 => ZosBody::EnableRequest {
                session: session(&mut input),
            },
            3 => ZosBody::DisableRequest {
                session: session(&mut input),
            },
            4 => ZosBody::PlannedSwapRequest {
                session: session(&mut input),
            },
            10 => ZosBody::PurgeConfigRequest {
                session: session(&mut input),
            },
            11 => ZosBody::EnableFreezeRequest {
                session: session(&mut input),
            },
            5 => ZosBody::FlashRequest {
                options: HostFlashOptions(u16::from(input.byte() & 0x0F)),
                pairs: pairs(&mut input),
            },
            6 => ZosBody::BackupRequest {
                volumes: volumes(&mut input),
            },
            7 => {
                let before = system.hyperswap_status();
                let event = system.primary_failure(now);
                if before.state == HyperSwapState::ENABLED {
                    assert_ne!(system.hyperswap_status().active_site, before.active_site);
                    reached.insert("unplanned_swap");
                }
                assert_eq!(event.is_some(), before.state != HyperSwapState::NO_CONFIG);
                continue;
            }
            8 => {
                let request = logon(&mut input);
                let user = crate::passticket::RacfName::parse("user", request.user.as_str());
                let revoked = user.as_ref().is_ok_and(|u| system.racf().is_revoked(u));
                match ServerBackend::<Zos>::logon(
                    &mut system,
                    &request,
                    now,
                    std::time::Instant::now(),
                ) {
                    LogonDecision::Accept { .. } => {
                        // spec: passticket.md §4.3: a revoked user never logs on.
                        assert!(!revoked, "revoked user {} logged on", request.user);
                        reached.insert("logon_accepted");
                    }
                    LogonDecision::Refuse { .. } if revoked => {
                        reached.insert("revoked_refused");
                    }
                    LogonDecision::Refuse { .. } => {}
                }
                continue;
            }
            _ => {
                now += u64::from(input.byte()) * 7;
                continue;
            }
        };
        let before = system.hyperswap_status();
        let reply = ServerBackend::<Zos>::request(&mut system, &body, now);
        check_reply(&body, &reply);
        let after = system.hyperswap_status();
        assert_eq!(
            after.state == HyperSwapState::NO_CONFIG,
            after.active_site == 0
        );
        if let (ZosBody::PlannedSwapRequest { .. }, Ok(ZosBody::HyperSwapReply { status, .. })) =
            (&body, &reply)
            && status.rc == ReturnCode::OK
        {
            assert_eq!(
                before.state,
                HyperSwapState::ENABLED,
                "swap while not enabled"
            );
            assert_ne!(after.active_site, before.active_site, "swap kept the site");
            reached.insert("planned_swap");
        }
        if after.state == HyperSwapState::ENABLED {
            reached.insert("enabled");
        }
    }
    reached
}

/// The emulated z/TPF complex: QUERY, FLASH, SGC_BACKUP, logons. Invariants: replies
/// have their request's type; a FLASH or backup succeeds only when every volume is
/// attached and none repeats; backup ids strictly increase.
pub fn ztpf_system(data: &[u8]) -> Reached {
    let mut reached = Reached::new();
    let text = format!("attached = [\"75FA120:3000-3008\", \"75XX999:3100-3101\"]\n{SECURITY}");
    let Ok(cfg) = toml::from_str::<crate::sim::ztpf::ZtpfSystemConfig>(&text) else {
        return reached;
    };
    let Ok(mut system) = crate::sim::ztpf::ZtpfSystem::with_keys(&cfg, env) else {
        panic!("the fuzz z/TPF configuration is valid");
    };
    let attached = |v: &VolumeRef| {
        (v.storage.as_str() == "75FA120" && (0x3000..=0x3008).contains(&v.volume))
            || (v.storage.as_str() == "75XX999" && (0x3100..=0x3101).contains(&v.volume))
    };
    let mut input = Input(data);
    let mut now = 1_700_000_000u64;
    let mut last_backup = 0;
    while !input.0.is_empty() {
        let body = match input.byte() % 5 {
            0 => ZtpfBody::QueryRequest,
            1 => ZtpfBody::FlashRequest {
                options: HostFlashOptions(u16::from(input.byte() & 0x0F)),
                pairs: pairs(&mut input),
            },
            2 => ZtpfBody::BackupRequest {
                volumes: volumes(&mut input),
            },
            3 => {
                let request = logon(&mut input);
                if let LogonDecision::Accept { .. } = ServerBackend::<Ztpf>::logon(
                    &mut system,
                    &request,
                    now,
                    std::time::Instant::now(),
                ) {
                    reached.insert("logon_accepted");
                }
                continue;
            }
            _ => {
                now += u64::from(input.byte());
                continue;
            }
        };
        let reply = ServerBackend::<Ztpf>::request(&mut system, &body, now);
        check_reply(&body, &reply);
        let ok = matches!(&reply, Ok(ZtpfBody::FlashReply { status, .. } | ZtpfBody::BackupReply { status, .. }) if status.rc == ReturnCode::OK);
        let volumes: Vec<&VolumeRef> = match &body {
            ZtpfBody::FlashRequest { pairs, .. } => {
                pairs.iter().flat_map(|p| [&p.first, &p.second]).collect()
            }
            ZtpfBody::BackupRequest { volumes } => volumes.iter().collect(),
            _ => continue,
        };
        // spec: ztpf.md §3.4: a volume is its serial and id (the device number is
        // only the host's label for it).
        let ids: std::collections::BTreeSet<_> = volumes
            .iter()
            .map(|v| (v.storage.as_str(), v.volume))
            .collect();
        let unique = ids.len() == volumes.len();
        assert_eq!(
            ok,
            unique && volumes.iter().all(|v| attached(v)),
            "{body:?} -> {reply:?}"
        );
        if let Ok(ZtpfBody::BackupReply {
            status, backup_id, ..
        }) = &reply
            && status.rc == ReturnCode::OK
        {
            assert!(*backup_id > last_backup, "backup ids must increase");
            last_backup = *backup_id;
            reached.insert("backup");
        }
        if ok {
            reached.insert("accepted");
        } else {
            reached.insert("refused");
        }
    }
    reached
}

/// The DS8000 service's path from a wire request into the storage model: any request
/// type, any ids and sizes, decoded from the input as the wire would carry them,
/// with clock ticks between. Invariants: no panic; replies have their request's type;
/// SHOWVOL of a volume the image lists succeeds.
pub fn hmc(data: &[u8]) -> Reached {
    use crate::proto::ds8k::{Ds8kBody, Ds8kMessageType};
    let mut reached = Reached::new();
    let text = r#"
image = "IBM.2107-75FA120"
[storage]
copy_tracks_per_sec = 5
max_backups_per_volume = 3
[[volumes]]
ids = "3000-3003"
ckd_cylinders = 1
name = "P"
safeguarded_percent = 50
[[volumes]]
ids = "1000-1001"
fb_gib = 1
"#;
    let Ok(cfg) = toml::from_str::<crate::sim::hmc::Ds8kSystemConfig>(text) else {
        return reached;
    };
    let Ok(mut system) = crate::sim::hmc::Ds8kSystem::with_keys(&cfg, env) else {
        panic!("the fuzz DS8000 configuration is valid");
    };
    const REQUESTS: [Ds8kMessageType; 18] = [
        Ds8kMessageType::QUERY_IMAGE,
        Ds8kMessageType::MKVOL,
        Ds8kMessageType::RMVOL,
        Ds8kMessageType::SHOWVOL,
        Ds8kMessageType::WRITE_TRACK,
        Ds8kMessageType::READ_TRACK,
        Ds8kMessageType::MKFLASH,
        Ds8kMessageType::RESYNCFLASH,
        Ds8kMessageType::RMFLASH,
        Ds8kMessageType::LSFLASH,
        Ds8kMessageType::UNFREEZEFLASH,
        Ds8kMessageType::MKSGCAP,
        Ds8kMessageType::SGC_BACKUP,
        Ds8kMessageType::LSBACKUP,
        Ds8kMessageType::RECOVER_BACKUP,
        Ds8kMessageType::EXPIRE_BACKUP,
        Ds8kMessageType::RESTORE_BACKUP,
        Ds8kMessageType::FENCE,
    ];
    let mut input = Input(data);
    let mut now_ms = 1_700_000_000_000u64;
    system.tick(now_ms);
    while !input.0.is_empty() {
        let op = input.byte();
        if op == 0xFF {
            now_ms += u64::from(input.byte()) * 250;
            let _events = system.tick(now_ms);
            reached.insert("tick");
            continue;
        }
        let t = REQUESTS[usize::from(op) % REQUESTS.len()];
        // The body: a length byte, then that many bytes of the input.
        let len = usize::from(input.byte() % 48);
        let body: Vec<u8> = (0..len).map(|_| input.byte()).collect();
        let Some(Ok(request)) = Ds8kBody::read_body(t.0, FrameKind::Request, &body.into()) else {
            continue;
        };
        reached.insert("decoded");
        let seen_before = request
            .fence()
            .map_or(0, |f| system.fences().epoch_of(f.domain));
        let reply = ServerBackend::<crate::proto::ds8k::Ds8k>::request(
            &mut system,
            &request,
            now_ms / 1000,
        );
        check_reply(&request, &reply);
        match &reply {
            Ok(_) => reached.insert("carried_out"),
            Err(_) => reached.insert("refused"),
        };
        if let (Ds8kBody::CreateVolumeRequest { volume, .. }, Ok(_)) = (&request, &reply) {
            assert!(
                system.image().query_volume(*volume).is_ok(),
                "created volume missing"
            );
            reached.insert("created");
        }
        // spec: ds8k.md §3.4: a changing request of an epoch older than its domain's
        // is refused FENCED; one carried out leaves the domain at its epoch or above.
        if let Some(fence) = request.fence().filter(|f| !f.is_none()) {
            let seen = system.fences().epoch_of(fence.domain);
            match &reply {
                Ok(_) => assert!(seen >= fence.epoch && seen >= seen_before),
                Err(status) if status.reason == crate::ds8k::Ds8kReason::FENCED.0 => {
                    assert!(fence.epoch < seen_before, "fenced without a newer epoch");
                    reached.insert("fenced");
                }
                Err(_) => {}
            }
            if fence.epoch < seen_before && !matches!(request, Ds8kBody::FenceRequest { .. }) {
                assert!(reply.is_err(), "an older epoch's request was carried out");
            }
        }
    }
    reached
}
