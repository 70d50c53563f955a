//! Metro Mirror Failover/Failback and Basic HyperSwap sessions (policy.md §5.8):
//! Start H1->H2 and Start H2->H1 (paths and pairs, a resume or a failback, the
//! HyperSwap configuration loaded and enabled on z/OS), Suspend (a freeze of the
//! consistency group with the session's policy), Stop, Recover (failover to the
//! secondaries), HyperSwap (a planned swap through z/OS), Terminate (HyperSwap
//! purged, pairs removed) and Refresh States.
//!
//! Every Metro Mirror request names the image whose HMC carries it out and every
//! HyperSwap request the z/OS system (`StorageOp::directed`), so one command may
//! touch both images and the host.

use std::collections::BTreeSet;

use super::{After, Completed, Plan};
use crate::ds8k::ids::{Lss, VolumeId};
use crate::policy::engine::state::InFlight;
use crate::policy::engine::{Refusal, codes};
use crate::policy::session::{
    HyperSwapStatus, MirrorState, MmProperties, Session, SessionCommand, SessionState,
    SessionStatus, Site,
};
use crate::policy::storage::{
    HyperSwapRequest, MirrorPairFacts, MirrorPairState, MirrorRequest, StorageOp, StorageOutcome,
};

/// The session's volumes at `site`, in copy-set order.
fn volumes_at(s: &Session, site: Site) -> Vec<VolumeId> {
    s.copy_sets
        .iter()
        .filter_map(|c| c.at(site).map(|v| v.volume))
        .collect()
}

/// (volume at `from`, its partner at the other site).
fn pairs_from(s: &Session, from: Site) -> Vec<(VolumeId, VolumeId)> {
    s.copy_sets
        .iter()
        .filter_map(|c| Some((c.at(from)?.volume, c.at(from.other())?.volume)))
        .collect()
}

/// The LSS pairs of the pairs from `from`: one PPRC path each, one freeze group.
fn lss_pairs_from(s: &Session, from: Site) -> Vec<(Lss, Lss)> {
    let set: BTreeSet<(Lss, Lss)> = pairs_from(s, from)
        .into_iter()
        .map(|(p, q)| (p.lss(), q.lss()))
        .collect();
    set.into_iter().collect()
}

/// The site a Start command mirrors from.
fn start_site(command: SessionCommand) -> Option<Site> {
    match command {
        SessionCommand::StartH1H2 => Some(Site::H1),
        SessionCommand::StartH2H1 => Some(Site::H2),
        _ => None,
    }
}

/// The plan of `command` on MM or HS session `s`.
pub(in crate::policy::engine) fn plan(
    s: &Session,
    p: &MmProperties,
    command: SessionCommand,
) -> Result<Plan, Refusal> {
    let (Some(h1), Some(h2)) = (s.serial_of(Site::H1), s.serial_of(Site::H2)) else {
        return Ok(Plan::NotValid);
    };
    let serial = |site: Site| match site {
        Site::H1 => h1.to_owned(),
        Site::H2 => h2.to_owned(),
    };
    let mirror = |site: Site, request: MirrorRequest| StorageOp::Mirror {
        at: serial(site),
        request,
    };
    let system = match (p.on_zos(), &p.host_system) {
        (true, Some(system)) => Some(system.clone()),
        (true, None) => {
            return Err(Refusal::bad(
                codes::BAD_PROPERTY,
                format!(
                    "session {} is managed with HyperSwap or Hardened Freeze but names no z/OS system: set its host system property",
                    s.name
                ),
            ));
        }
        (false, _) => None,
    };
    // A HyperSwap request goes to the host system, then to each other sysplex
    // member holding the configuration (policy.md §5.8).
    let members = p.other_members();
    let hyperswap = |request: HyperSwapRequest| -> Vec<StorageOp> {
        system
            .iter()
            .chain(members.iter())
            .map(|system| StorageOp::HyperSwap {
                system: system.clone(),
                session: s.name.clone(),
                request: request.clone(),
            })
            .collect()
    };
    let m = s.mirror();
    let (source, target) = (m.source, m.source.other());
    let mut steps = Vec::new();
    // HyperSwap is disabled before anything suspends the pairs under it.
    if m.hyperswap == HyperSwapStatus::Enabled
        && matches!(
            command,
            SessionCommand::Suspend | SessionCommand::Stop | SessionCommand::Terminate
        )
    {
        steps.extend(hyperswap(HyperSwapRequest::Disable));
    }
    match command {
        SessionCommand::StartH1H2 | SessionCommand::StartH2H1 => {
            let Some(from) = start_site(command) else {
                return Ok(Plan::NotValid);
            };
            let remote = serial(from.other());
            steps.push(mirror(
                from,
                MirrorRequest::Paths {
                    remote: remote.clone(),
                    lss_pairs: lss_pairs_from(s, from),
                },
            ));
            steps.push(mirror(
                from,
                match s.state {
                    SessionState::Defined => MirrorRequest::Pairs {
                        remote,
                        pairs: pairs_from(s, from),
                    },
                    SessionState::Suspended if from == source => MirrorRequest::Resume {
                        volumes: volumes_at(s, from),
                    },
                    SessionState::TargetAvailable => MirrorRequest::Failback {
                        remote,
                        pairs: pairs_from(s, from),
                    },
                    _ => return Ok(Plan::NotValid),
                },
            ));
            let refs = s
                .copy_sets
                .iter()
                .filter_map(|c| Some((c.at(from)?.clone(), c.at(from.other())?.clone())))
                .collect();
            steps.extend(hyperswap(HyperSwapRequest::Load { pairs: refs }));
            steps.extend(hyperswap(if p.hyperswap {
                HyperSwapRequest::Enable
            } else {
                HyperSwapRequest::EnableFreeze
            }));
        }
        SessionCommand::Suspend => {
            let lss_pairs = lss_pairs_from(s, source);
            let lsss: BTreeSet<Lss> = lss_pairs.iter().map(|(l, _)| *l).collect();
            steps.push(mirror(
                source,
                MirrorRequest::Freeze {
                    remote: serial(target),
                    lss_pairs,
                },
            ));
            if !p.hold_io_after_suspend {
                steps.push(mirror(
                    source,
                    MirrorRequest::Run {
                        lsss: lsss.into_iter().collect(),
                    },
                ));
            }
        }
        SessionCommand::Stop => steps.push(mirror(
            source,
            MirrorRequest::Pause {
                volumes: volumes_at(s, source),
            },
        )),
        SessionCommand::Recover => steps.push(mirror(
            target,
            MirrorRequest::Failover {
                volumes: volumes_at(s, target),
            },
        )),
        SessionCommand::HyperSwap if p.hyperswap => {
            steps.extend(hyperswap(HyperSwapRequest::PlannedSwap));
        }
        SessionCommand::Terminate => {
            if m.hyperswap != HyperSwapStatus::NotLoaded {
                steps.extend(hyperswap(HyperSwapRequest::Purge));
            }
            steps.push(mirror(
                source,
                MirrorRequest::Remove {
                    volumes: volumes_at(s, source),
                },
            ));
        }
        SessionCommand::RefreshStates => steps.push(mirror(
            source,
            MirrorRequest::Query {
                volumes: volumes_at(s, source),
            },
        )),
        _ => return Ok(Plan::NotValid),
    }
    Ok(Plan::Steps(steps))
}

/// The session's state and status as the box's pairs show them.
pub(in crate::policy::engine) fn judge_pairs(
    pairs: &[MirrorPairFacts],
) -> (SessionState, SessionStatus, bool) {
    if pairs.is_empty() {
        return (SessionState::Defined, SessionStatus::Inactive, false);
    }
    if pairs.iter().any(|p| p.failed_over) {
        return (SessionState::TargetAvailable, SessionStatus::Normal, false);
    }
    if pairs.iter().all(|p| p.state == MirrorPairState::FullDuplex) {
        return (SessionState::Prepared, SessionStatus::Normal, false);
    }
    if pairs
        .iter()
        .any(|p| matches!(p.state, MirrorPairState::Suspended(_)))
    {
        return (SessionState::Suspended, SessionStatus::Severe, false);
    }
    (SessionState::Preparing, SessionStatus::Warning, true)
}

/// MM or HS session `s` after `command`'s storage work answered `outcome` (the
/// last step's); the outcome back when it is not one this command expects.
pub(in crate::policy::engine) fn complete(
    s: &mut Session,
    _flight: &InFlight,
    command: SessionCommand,
    outcome: StorageOutcome,
) -> Result<Completed, StorageOutcome> {
    let mut done = Completed::default();
    // Where the pairs and production are: changed here, kept if the outcome fits.
    let mut m = s.mirror();
    let hyperswap = s.properties.mirror().is_some_and(|p| p.hyperswap);
    let on_zos = s.properties.mirror().is_some_and(|p| p.on_zos());
    // After a suspension or a swap every member is disabled too.
    let all_members = s
        .properties
        .mirror()
        .map_or(0, |p| p.other_members().len())
        .min(32);
    let every_member = if all_members == 32 {
        u32::MAX
    } else {
        (1u32 << all_members) - 1
    };
    let loaded = |m: HyperSwapStatus| {
        if m == HyperSwapStatus::NotLoaded {
            m
        } else {
            HyperSwapStatus::Disabled
        }
    };
    match (command, outcome) {
        (
            SessionCommand::StartH1H2 | SessionCommand::StartH2H1,
            StorageOutcome::Mirrored { .. } | StorageOutcome::HyperSwapped(_),
        ) => {
            let from = start_site(command).unwrap_or_default();
            m = MirrorState {
                source: from,
                production: from,
                hyperswap: if on_zos {
                    HyperSwapStatus::Enabled
                } else {
                    HyperSwapStatus::NotLoaded
                },
                members_disabled: 0,
            };
            s.state = SessionState::Preparing;
            s.status = SessionStatus::Warning;
            s.copying = true;
            s.relationships = true;
            done.after.push(After::PollCopy);
            done.extra = format!(
                " The pairs copy from {} to {}{}.",
                from.name(),
                from.other().name(),
                match (hyperswap, on_zos) {
                    (true, _) => "; HyperSwap is enabled",
                    (false, true) => "; Hardened Freeze is armed on z/OS",
                    _ => "",
                }
            );
        }
        (SessionCommand::Suspend | SessionCommand::Stop, StorageOutcome::Mirrored { .. }) => {
            s.state = SessionState::Suspended;
            s.status = SessionStatus::Severe;
            s.copying = false;
            m.hyperswap = loaded(m.hyperswap);
            if m.hyperswap != HyperSwapStatus::NotLoaded {
                m.members_disabled = every_member;
            }
            done.after.push(After::ForgetProgress);
            if command == SessionCommand::Suspend {
                let held = s
                    .properties
                    .mirror()
                    .is_some_and(|p| p.hold_io_after_suspend);
                done.extra = if held {
                    " The H2 volumes hold one point in time; I/O to the primaries is held (Hold I/O after Suspend).".into()
                } else {
                    " The H2 volumes hold one point in time; I/O to the primaries goes on.".into()
                };
            }
        }
        (SessionCommand::Recover, StorageOutcome::Mirrored { .. }) => {
            s.state = SessionState::TargetAvailable;
            s.status = SessionStatus::Normal;
            m.production = m.source.other();
            done.extra = format!(
                " The {} volumes are available; production is {}.",
                m.production.name(),
                m.production.name()
            );
        }
        (SessionCommand::HyperSwap, StorageOutcome::HyperSwapped(facts)) => {
            s.state = SessionState::TargetAvailable;
            s.status = SessionStatus::Normal;
            m.production = m.source.other();
            m.hyperswap = if facts.state == 0 {
                HyperSwapStatus::NotLoaded
            } else {
                HyperSwapStatus::Disabled
            };
            m.members_disabled = every_member;
            done.extra = format!(
                " z/OS swapped {} pairs; production is {}.",
                facts.pairs,
                m.production.name()
            );
        }
        (SessionCommand::Terminate, StorageOutcome::Mirrored { .. }) => {
            let production = m.production;
            s.state = SessionState::Defined;
            s.status = SessionStatus::Inactive;
            s.copying = false;
            s.relationships = false;
            m = MirrorState {
                source: production,
                production,
                hyperswap: HyperSwapStatus::NotLoaded,
                members_disabled: 0,
            };
            done.after.push(After::ForgetProgress);
        }
        (SessionCommand::RefreshStates, StorageOutcome::MirrorPairs(pairs)) => {
            let (state, status, copying) = judge_pairs(&pairs);
            s.state = state;
            s.status = status;
            s.relationships = !pairs.is_empty();
            done.after.push(After::Progress(
                pairs.iter().map(|p| p.out_of_sync_tracks).sum(),
            ));
            if copying && !s.copying {
                done.after.push(After::PollCopy);
            }
            s.copying = copying;
        }
        (_, outcome) => return Err(outcome),
    }
    if let Some(mirror) = s.mirror_mut() {
        *mirror = m;
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::SessionType;
    use crate::policy::access::SessionAction;
    use crate::policy::inventory::VolumeRef;
    use crate::policy::session::{CopySet, Properties};

    fn session(p: MmProperties) -> Session {
        let mut s = Session::new("MM1".into(), SessionType::Mm, String::new(), 0);
        s.properties = Properties::Mm(p);
        s.copy_sets = [0x3000u16, 0x3001, 0x3100]
            .iter()
            .map(|&v| CopySet {
                h1: VolumeRef {
                    serial: "75FA120".into(),
                    volume: VolumeId(v),
                },
                partner: Some(VolumeRef {
                    serial: "75FA121".into(),
                    volume: VolumeId(v + 0x0100),
                }),
            })
            .collect::<Vec<_>>()
            .into();
        s
    }

    fn through(system: &str) -> MmProperties {
        MmProperties {
            hyperswap: true,
            host_system: Some(system.into()),
            ..MmProperties::default()
        }
    }

    fn steps(s: &Session, command: SessionCommand) -> Vec<StorageOp> {
        let Some(p) = s.properties.mirror() else {
            panic!("not a Metro Mirror session");
        };
        match plan(s, p, command) {
            Ok(Plan::Steps(steps)) => steps,
            other => panic!("{command:?}: {other:?}"),
        }
    }

    /// What each step is and where it goes, in order.
    fn shape(steps: &[StorageOp]) -> Vec<String> {
        steps
            .iter()
            .map(|op| match op {
                StorageOp::Mirror { at, request } => format!("{} at {at}", request.name()),
                StorageOp::HyperSwap {
                    system, request, ..
                } => format!("{} on {system}", request.name()),
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn start_makes_paths_and_pairs_on_h1_then_loads_and_enables_on_zos() {
        let s = session(through("SYSA"));
        let start = steps(&s, SessionCommand::StartH1H2);
        assert_eq!(
            shape(&start),
            [
                "mkpprcpath at 75FA120",
                "mkpprc at 75FA120",
                "load the HyperSwap configuration on SYSA",
                "enable HyperSwap on SYSA",
            ]
        );
        // One path per LSS pair: LSS 30 -> 31 and 31 -> 32.
        let StorageOp::Mirror {
            request: MirrorRequest::Paths { remote, lss_pairs },
            ..
        } = &start[0]
        else {
            panic!("{start:?}")
        };
        assert_eq!(remote, "75FA121");
        assert_eq!(lss_pairs, &[(Lss(0x30), Lss(0x31)), (Lss(0x31), Lss(0x32))]);
    }

    #[test]
    fn each_state_starts_the_way_the_box_needs() {
        let mut s = session(MmProperties::default());
        s.state = SessionState::Suspended;
        assert_eq!(
            shape(&steps(&s, SessionCommand::StartH1H2)),
            ["mkpprcpath at 75FA120", "resumepprc at 75FA120"]
        );
        // Failed over: Start H2->H1 fails back from H2 (the pairs reverse).
        s.state = SessionState::TargetAvailable;
        s.mirror_mut().unwrap().production = Site::H2;
        let back = steps(&s, SessionCommand::StartH2H1);
        assert_eq!(
            shape(&back),
            ["mkpprcpath at 75FA121", "failbackpprc at 75FA121"]
        );
        let StorageOp::Mirror {
            request: MirrorRequest::Failback { remote, pairs },
            ..
        } = &back[1]
        else {
            panic!("{back:?}")
        };
        assert_eq!(remote, "75FA120");
        assert_eq!(pairs[0], (VolumeId(0x3100), VolumeId(0x3000)));
    }

    #[test]
    fn suspend_disables_hyperswap_then_freezes_and_runs_unless_io_is_held() {
        let mut s = session(through("SYSA"));
        s.state = SessionState::Prepared;
        s.mirror_mut().unwrap().hyperswap = HyperSwapStatus::Enabled;
        assert_eq!(
            shape(&steps(&s, SessionCommand::Suspend)),
            [
                "disable HyperSwap on SYSA",
                "freezepprc at 75FA120",
                "unfreezepprc at 75FA120",
            ]
        );
        s.properties = Properties::Mm(MmProperties {
            hold_io_after_suspend: true,
            ..through("SYSA")
        });
        assert_eq!(
            shape(&steps(&s, SessionCommand::Suspend)),
            ["disable HyperSwap on SYSA", "freezepprc at 75FA120"]
        );
    }

    #[test]
    fn recover_fails_over_the_secondaries_on_their_image_and_terminate_purges() {
        let mut s = session(through("SYSA"));
        s.state = SessionState::Suspended;
        s.mirror_mut().unwrap().hyperswap = HyperSwapStatus::Disabled;
        assert_eq!(
            shape(&steps(&s, SessionCommand::Recover)),
            ["failoverpprc at 75FA121"]
        );
        assert_eq!(
            shape(&steps(&s, SessionCommand::Terminate)),
            [
                "purge the HyperSwap configuration on SYSA",
                "rmpprc at 75FA120"
            ]
        );
    }

    #[test]
    fn hardened_freeze_arms_zos_and_offers_no_swap() {
        let p = MmProperties {
            hyperswap: false,
            hardened_freeze: true,
            host_system: Some("SYSA".into()),
            ..MmProperties::default()
        };
        let mut s = session(p.clone());
        let start = shape(&steps(&s, SessionCommand::StartH1H2));
        assert_eq!(
            start.last().map(String::as_str),
            Some("arm Hardened Freeze on SYSA")
        );
        s.state = SessionState::Prepared;
        s.mirror_mut().unwrap().hyperswap = HyperSwapStatus::Enabled;
        assert!(!s.available_commands().contains(&SessionAction::HyperSwap));
        assert!(matches!(
            plan(&s, &p, SessionCommand::HyperSwap),
            Ok(Plan::NotValid)
        ));
    }

    #[test]
    fn every_sysplex_member_is_told_in_order() {
        let mut s = session(MmProperties {
            members: vec!["SYSB".into(), "SYSA".into()],
            ..through("SYSA")
        });
        assert_eq!(
            shape(&steps(&s, SessionCommand::StartH1H2))[2..],
            [
                "load the HyperSwap configuration on SYSA",
                "load the HyperSwap configuration on SYSB",
                "enable HyperSwap on SYSA",
                "enable HyperSwap on SYSB",
            ]
        );
        s.state = SessionState::Prepared;
        s.mirror_mut().unwrap().hyperswap = HyperSwapStatus::Enabled;
        assert_eq!(
            shape(&steps(&s, SessionCommand::HyperSwap)),
            ["planned HyperSwap on SYSA", "planned HyperSwap on SYSB"]
        );
        // Disabled on SYSB alone: degraded, and no swap is offered.
        s.mirror_mut().unwrap().members_disabled = 1;
        assert!(s.mirror().degraded(1));
        assert_eq!(s.hyperswap_status(), "hs degraded");
        assert!(!s.available_commands().contains(&SessionAction::HyperSwap));
    }

    #[test]
    fn hyperswap_without_a_zos_system_is_refused() {
        let s = session(MmProperties {
            hyperswap: true,
            ..MmProperties::default()
        });
        let Some(p) = s.properties.mirror() else {
            panic!()
        };
        let refusal = plan(&s, p, SessionCommand::StartH1H2).unwrap_err();
        assert_eq!(refusal.code, codes::BAD_PROPERTY);
        assert!(
            refusal.text.contains("names no z/OS system"),
            "{}",
            refusal.text
        );
    }

    fn facts(state: MirrorPairState, failed_over: bool) -> MirrorPairFacts {
        MirrorPairFacts {
            primary_serial: "75FA120".into(),
            primary: VolumeId(0x3000),
            secondary_serial: "75FA121".into(),
            secondary: VolumeId(0x3100),
            state,
            failed_over,
            out_of_sync_tracks: 0,
        }
    }

    #[test]
    fn the_box_s_pairs_say_the_session_s_state() {
        use MirrorPairState as P;
        assert_eq!(judge_pairs(&[]).0, SessionState::Defined);
        assert_eq!(
            judge_pairs(&[facts(P::FullDuplex, false)]),
            (SessionState::Prepared, SessionStatus::Normal, false)
        );
        assert_eq!(
            judge_pairs(&[facts(P::FullDuplex, false), facts(P::CopyPending, false)]),
            (SessionState::Preparing, SessionStatus::Warning, true)
        );
        assert_eq!(
            judge_pairs(&[facts(P::Suspended(2), false), facts(P::FullDuplex, false)]).0,
            SessionState::Suspended
        );
        assert_eq!(
            judge_pairs(&[facts(P::Suspended(4), true)]).0,
            SessionState::TargetAvailable
        );
    }
}
