//! The session and policy engine, scenario by scenario, against the simulated DS8000
//! (harness: engine + storage model in one process, time advanced by hand). After
//! every step the journal is replayed and must rebuild the same engine
//! (protocol-specs/policy.md §8).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use zgate::ds8k::ids::{VolumeId, VolumeKind};
use zgate::harness::{Fault, Harness};
use zgate::policy::SessionType;
use zgate::policy::access::{ActionScope, OperatorGrant, Role, SessionAction, SessionScope};
use zgate::policy::audit::{self, Head};
use zgate::policy::dual_control::DualControlMode;
use zgate::policy::engine::{Command, Engine, EngineConfig, Outcome, Record, Reply, codes};
use zgate::policy::inventory::{HostConnection, HostCredential, HostKind, Sealed, VolumeRef};
use zgate::policy::retention::SgcPolicy;
use zgate::policy::schedule::Schedule;
use zgate::policy::session::{
    CopySet, FcProperties, Properties, SessionCommand, SessionState, SessionStatus, SgcProperties,
};
use zgate::sim::ds8k::ImageConfig;

const SERIAL: &str = "75ABC01";
const MIN: u64 = 60_000;

fn vol(v: u16) -> VolumeRef {
    VolumeRef::parse(&format!("DS8000:2107.{SERIAL}:VOL:{v:04X}")).unwrap()
}

fn cs(h1: u16, partner: u16) -> CopySet {
    CopySet {
        h1: vol(h1),
        partner: Some(vol(partner)),
    }
}

/// A harness checked after every step: the replayed journal equals the engine, and
/// the audit trail in the journal verifies.
struct World {
    h: Harness,
}

impl World {
    /// A box with CKD volumes 0000-0007 (100 cylinders; 0000-0003 with safeguarded
    /// capacity), 0008 (200 cylinders) and FB 1000-1001; users admin, admin2, op
    /// (an Operator granted nothing yet) and mon.
    fn new(copy_rate: u64) -> World {
        let mut h = Harness::with_admin(
            EngineConfig {
                copy_poll_interval_ms: 30_000,
                ..EngineConfig::default()
            },
            "admin",
        );
        let mut volumes = Vec::new();
        for v in 0..8u16 {
            let sgc = if v < 4 { 1500 } else { 0 };
            volumes.push((VolumeId(v), VolumeKind::ckd(100), sgc));
        }
        volumes.push((VolumeId(8), VolumeKind::ckd(200), 0));
        volumes.push((VolumeId(0x1000), VolumeKind::fb_gib(1), 0));
        volumes.push((VolumeId(0x1001), VolumeKind::fb_gib(1), 0));
        let config = ImageConfig {
            copy_tracks_per_sec: copy_rate,
            ..ImageConfig::default()
        };
        let reply = h.add_box("admin", SERIAL, config, &volumes).unwrap();
        assert_eq!(reply.outcome, Outcome::Done, "{reply:?}");
        let mut w = World { h };
        for (name, role) in [
            ("admin2", Role::Administrator),
            ("op", Role::Operator),
            ("mon", Role::Monitor),
        ] {
            let reply = w.h.add_user("admin", name, role, None);
            assert_eq!(reply.outcome, Outcome::Done, "{reply:?}");
            w.check();
        }
        w
    }

    fn check(&self) {
        let replayed = Engine::replay(self.h.engine.config(), &self.h.journal);
        assert_eq!(replayed.state(), self.h.engine.state(), "replay differs");
        let entries: Vec<_> = self
            .h
            .journal
            .iter()
            .filter_map(|r| match r {
                Record::Audit(e) => Some(e.clone()),
                _ => None,
            })
            .collect();
        audit::verify(
            Head::GENESIS,
            &entries,
            Some(self.h.engine.state().audit_head),
        )
        .unwrap();
    }

    fn run(&mut self, user: &str, command: Command) -> Reply {
        let reply = self.h.command(user, command);
        self.check();
        reply
    }

    fn ok(&mut self, user: &str, command: Command) -> Reply {
        let reply = self.run(user, command.clone());
        assert!(
            matches!(reply.outcome, Outcome::Done | Outcome::Started(_)),
            "{command:?} by {user}: {reply:?}"
        );
        reply
    }

    fn refused(&mut self, user: &str, command: Command, code: u16) -> Reply {
        let reply = self.run(user, command.clone());
        assert_eq!(
            reply.outcome,
            Outcome::Refused(code),
            "{command:?}: {reply:?}"
        );
        assert!(reply.message.is_error(), "{reply:?}");
        reply
    }

    /// A command accepted, then refused once the storage system answered: the
    /// refusal is the last console message, carrying its code.
    fn refused_after_read(
        &mut self,
        user: &str,
        command: Command,
        code: u16,
    ) -> zgate::policy::console::ConsoleMessage {
        let before = self.h.engine.state().sessions.clone();
        let reply = self.run(user, command.clone());
        assert!(
            matches!(reply.outcome, Outcome::Started(_)),
            "{command:?}: {reply:?}"
        );
        let last = self.h.console.last().unwrap().clone();
        assert!(last.is_error(), "{last:?}");
        assert_eq!(last.inserts, vec![format!("{code:#06x}")], "{last:?}");
        let after = &self.h.engine.state().sessions;
        for (name, s) in &before {
            assert_eq!(after[name].copy_sets, s.copy_sets, "copy sets changed");
        }
        last
    }

    fn advance(&mut self, ms: u64) {
        self.h.advance(ms);
        self.check();
    }

    fn session(&self, name: &str) -> &zgate::policy::session::Session {
        &self.h.engine.state().sessions[name]
    }

    fn create(&mut self, name: &str, kind: SessionType, sets: Vec<CopySet>) {
        self.ok(
            "admin",
            Command::CreateSession {
                name: name.into(),
                kind,
                description: String::new(),
            },
        );
        if !sets.is_empty() {
            self.ok(
                "admin",
                Command::AddCopySets {
                    session: name.into(),
                    copy_sets: sets,
                },
            );
        }
    }

    fn set(&mut self, session: &str, properties: Properties) {
        self.ok(
            "admin",
            Command::SetProperties {
                session: session.into(),
                properties,
            },
        );
    }

    fn cmd(session: &str, command: SessionCommand) -> Command {
        Command::Run {
            session: session.into(),
            command,
        }
    }
}

#[test]
fn copy_sets_are_checked_against_the_box() {
    let mut w = World::new(2000);
    w.ok(
        "admin",
        Command::CreateSession {
            name: "FC1".into(),
            kind: SessionType::Fc,
            description: "nightly".into(),
        },
    );
    let add = |sets| Command::AddCopySets {
        session: "FC1".into(),
        copy_sets: sets,
    };
    // Refused once the volumes are read: no such volume, different size, different
    // type. The read is a storage action; the refusal is the console's last word.
    let m = w.refused_after_read("admin", add(vec![cs(0, 0x0099)]), codes::UNKNOWN_VOLUME);
    assert!(m.text.contains("has no volume"), "{m:?}");
    let m = w.refused_after_read("admin", add(vec![cs(4, 8)]), codes::BAD_COPY_SET);
    assert!(m.text.contains("not the same size and type"), "{m:?}");
    w.refused_after_read("admin", add(vec![cs(4, 0x1000)]), codes::BAD_COPY_SET);
    // Refused at once: the same volume twice, another box.
    w.refused("admin", add(vec![cs(4, 4)]), codes::BAD_COPY_SET);
    let other = VolumeRef::parse("DS8000:2107.75XYZ01:VOL:0005").unwrap();
    w.refused(
        "admin",
        add(vec![CopySet {
            h1: vol(4),
            partner: Some(other),
        }]),
        codes::BAD_COPY_SET,
    );
    w.ok("admin", add(vec![cs(4, 5)]));
    // One target in one session.
    w.create("FC2", SessionType::Fc, vec![]);
    let add_to = |session: &str, set: CopySet| Command::AddCopySets {
        session: session.into(),
        copy_sets: vec![set],
    };
    let r = w.refused("admin", add_to("FC2", cs(6, 5)), codes::BAD_COPY_SET);
    assert!(
        r.message
            .text
            .contains("T1 volume of a copy set in session FC1"),
        "{r:?}"
    );
    // SGC needs backup capacity on H1.
    w.create("SGC1", SessionType::Sgc, vec![]);
    let m = w.refused_after_read("admin", add_to("SGC1", cs(6, 7)), codes::BAD_COPY_SET);
    assert!(
        m.text.contains("no Safeguarded Copy backup capacity"),
        "{m:?}"
    );
    assert_eq!(w.session("FC1").copy_sets.len(), 1);
}

#[test]
fn flash_background_copy_and_iwnr2772i_once() {
    // 1,500 tracks at 10 tracks/s: 150 s of copy, five polls at 30 s.
    let mut w = World::new(10);
    w.create("FC1", SessionType::Fc, vec![cs(4, 5)]);
    assert_eq!(w.h.engine.available_commands("FC1").unwrap(), vec!["Flash"]);
    let r = w.refused(
        "admin",
        World::cmd("FC1", SessionCommand::Terminate),
        codes::COMMAND_NOT_VALID,
    );
    assert!(r.message.text.contains("valid actions are: Flash"), "{r:?}");
    assert_eq!(r.message.id.to_string(), "IWNR1302E");

    let flash = w.ok("admin", World::cmd("FC1", SessionCommand::Flash));
    // The engine says when the command's storage work ended, naming the action its
    // reply named, with the message that says how (policy.md §8.1).
    let Outcome::Started(action) = flash.outcome else {
        panic!("{flash:?}")
    };
    let ended: Vec<_> = w.h.finished.iter().filter(|f| f.action == action).collect();
    assert_eq!(ended.len(), 1, "{:#?}", w.h.finished);
    let said = ended[0].message.as_ref().expect("a message");
    assert_eq!(said.id.to_string(), "IWNR1026I", "{said:?}");
    assert!(w.h.engine.state().in_flight.is_empty());
    let s = w.session("FC1");
    assert_eq!(s.state, SessionState::TargetAvailable);
    assert_eq!(s.status, SessionStatus::Normal);
    assert!(s.copying);
    assert_eq!(w.h.messages("IWNR1026I").len(), 1);
    w.advance(10 * MIN);
    assert_eq!(w.h.messages("IWNR2772I").len(), 1, "{:#?}", w.h.console);
    assert!(!w.session("FC1").copying);
    let polls =
        w.h.executed
            .iter()
            .filter(|a| matches!(a.op, zgate::policy::storage::StorageOp::QueryFlash { .. }))
            .count();
    assert!(polls >= 5, "{polls} polls");
    // The target holds the source's data.
    let image = &w.h.boxes[SERIAL];
    assert_eq!(
        image.read_track(VolumeId(5), 7).unwrap(),
        image.read_track(VolumeId(4), 7).unwrap()
    );

    // A second flash completes again: one more IWNR2772I, not one per poll.
    w.ok("admin", World::cmd("FC1", SessionCommand::Flash));
    w.advance(10 * MIN);
    assert_eq!(w.h.messages("IWNR2772I").len(), 2);
    w.ok("admin", World::cmd("FC1", SessionCommand::Terminate));
    assert_eq!(w.session("FC1").state, SessionState::Defined);
}

#[test]
fn inhibit_target_writes_and_minimum_time_frame_per_flash() {
    let mut w = World::new(2000);
    w.create("FC1", SessionType::Fc, vec![cs(4, 5)]);
    w.set(
        "FC1",
        Properties::Fc(FcProperties {
            inhibit_target_writes: true,
            no_copy: true,
            min_flash_interval_mins: 30,
            ..FcProperties::default()
        }),
    );
    w.ok("admin", World::cmd("FC1", SessionCommand::Flash));
    let flashed_at = w.h.now_ms;
    let now = w.h.now_ms;
    let image = w.h.boxes.get_mut(SERIAL).unwrap();
    assert!(
        image.write_track(now, VolumeId(5), 0, 1).is_err(),
        "target write allowed"
    );
    image.write_track(now, VolumeId(4), 0, 1).unwrap();

    w.advance(10 * MIN);
    let r = w.refused(
        "admin",
        World::cmd("FC1", SessionCommand::Flash),
        codes::FLASH_TOO_SOON,
    );
    let next = flashed_at + 30 * MIN;
    assert!(r.message.text.contains(&next.to_string()), "{r:?}");
    // A flash issued outside zgate (DS CLI) is not counted: the window is zgate's own.
    w.advance(20 * MIN);
    w.ok("admin", World::cmd("FC1", SessionCommand::Flash));
    assert_eq!(w.session("FC1").last_flash_ms(), Some(w.h.now_ms));
}

#[test]
fn host_path_and_a_host_that_is_down() {
    let mut w = World::new(2000);
    w.ok(
        "admin",
        Command::DefineHostConnection(HostConnection {
            system: "SYSA".into(),
            kind: HostKind::Zos,
            address: "127.0.0.1".into(),
            port: 5858,
            user: "HOSTUSR".into(),
            credential: HostCredential::PassTicket {
                key: Sealed(vec![1; 40]),
                application: "IOSHMCSM".into(),
            },
        }),
    );
    w.create("FC1", SessionType::Fc, vec![cs(4, 5)]);
    w.set(
        "FC1",
        Properties::Fc(FcProperties {
            host_system: Some("SYSA".into()),
            ..FcProperties::default()
        }),
    );
    w.h.down.insert("SYSA".into());
    w.ok("admin", World::cmd("FC1", SessionCommand::Flash));
    let s = w.session("FC1");
    assert_eq!(s.status, SessionStatus::Severe);
    assert_eq!(s.state, SessionState::Defined);
    assert!(s.busy.is_none());
    assert!(s.last_error.as_deref().unwrap().contains("SYSA is down"));
    assert_eq!(w.h.messages("IWNR8013E").len(), 1);
    // It comes back: the flash runs once, through the host.
    w.h.down.clear();
    w.ok("admin", World::cmd("FC1", SessionCommand::Flash));
    assert_eq!(w.session("FC1").state, SessionState::TargetAvailable);
    let last = w.h.executed.last().unwrap();
    assert_eq!(
        last.route,
        zgate::policy::storage::Route::Host("SYSA".into())
    );
    // Still used: the connection cannot be removed.
    w.refused(
        "admin",
        Command::RemoveHostConnection {
            system: "SYSA".into(),
        },
        codes::IN_USE,
    );
}

fn sgc_world() -> World {
    let mut w = World::new(2000);
    w.create("SGC1", SessionType::Sgc, vec![cs(0, 4), cs(1, 5)]);
    w
}

fn backup(w: &mut World) -> Reply {
    w.ok("admin", World::cmd("SGC1", SessionCommand::Backup))
}

#[test]
fn sgc_backups_recover_and_restore() {
    let mut w = sgc_world();
    let image_write = |w: &mut World, track: u32, tag: u64| {
        let now = w.h.now_ms;
        w.h.boxes
            .get_mut(SERIAL)
            .unwrap()
            .write_track(now, VolumeId(0), track, tag)
            .unwrap();
    };
    image_write(&mut w, 3, 111);
    backup(&mut w);
    assert_eq!(w.session("SGC1").state, SessionState::Protected);
    assert_eq!(w.session("SGC1").status, SessionStatus::Warning);
    // The newest backup is not recoverable.
    let first = w.session("SGC1").backups()[0].id;
    let r = w.refused(
        "admin",
        World::cmd("SGC1", SessionCommand::RecoverBackup(first)),
        codes::COMMAND_NOT_VALID,
    );
    assert!(
        r.message
            .text
            .contains("valid actions are: Backup, Expire Backup"),
        "{r:?}"
    );
    w.advance(MIN);
    image_write(&mut w, 3, 222);
    backup(&mut w);
    assert_eq!(w.session("SGC1").status, SessionStatus::Normal);
    let second = w.session("SGC1").backups()[1].id;
    w.refused(
        "admin",
        World::cmd("SGC1", SessionCommand::RecoverBackup(second)),
        codes::BACKUP_NOT_RECOVERABLE,
    );
    image_write(&mut w, 3, 333);
    w.ok(
        "admin",
        World::cmd("SGC1", SessionCommand::RecoverBackup(first)),
    );
    assert_eq!(w.session("SGC1").recovered(), Some(first));
    // R1 holds H1 as it was at the first backup.
    assert_eq!(w.h.boxes[SERIAL].read_track(VolumeId(4), 3).unwrap(), 111);
    assert!(
        w.h.engine
            .available_commands("SGC1")
            .unwrap()
            .contains(&"TerminateH1R1")
    );
    w.ok("admin", World::cmd("SGC1", SessionCommand::TerminateH1R1));
    assert_eq!(w.session("SGC1").recovered(), None);
    w.ok(
        "admin",
        World::cmd("SGC1", SessionCommand::RestoreBackupToProduction(first)),
    );
    assert_eq!(w.h.boxes[SERIAL].read_track(VolumeId(0), 3).unwrap(), 111);
    w.ok("admin", World::cmd("SGC1", SessionCommand::Terminate));
    assert_eq!(w.session("SGC1").state, SessionState::Defined);
    assert!(w.session("SGC1").backups().is_empty());
}

/// policy.md §5.3: a backup taken before copy sets were added does not hold their
/// volumes, so it is refused up front (nothing reaches the box) and shown not
/// recoverable; backups taken after the addition may be used.
#[test]
fn backups_older_than_added_copy_sets_are_not_recoverable() {
    let mut w = World::new(2000);
    w.create("SGC1", SessionType::Sgc, vec![cs(0, 4)]);
    for _ in 0..2 {
        backup(&mut w);
        w.advance(MIN);
    }
    let old = w.session("SGC1").backups()[0].id;
    assert!(w.session("SGC1").recoverable(old));
    w.ok(
        "admin",
        Command::AddCopySets {
            session: "SGC1".into(),
            copy_sets: vec![cs(1, 5)],
        },
    );
    assert!(!w.session("SGC1").recoverable(old));
    assert!(!w.session("SGC1").has_recoverable());
    let sent = w.h.executed.len();
    for command in [
        SessionCommand::RecoverBackup(old),
        SessionCommand::RestoreBackupToProduction(old),
    ] {
        let r = w.refused(
            "admin",
            World::cmd("SGC1", command),
            codes::BACKUP_NOT_RECOVERABLE,
        );
        assert!(
            r.message.text.contains("before copy sets were added"),
            "{r:?}"
        );
    }
    assert_eq!(
        w.h.executed.len(),
        sent,
        "a refused restore reached the box"
    );
    // Two backups after the addition: the older of them holds both copy sets.
    for _ in 0..2 {
        backup(&mut w);
        w.advance(MIN);
    }
    let fresh = w.session("SGC1").backups()[2].id;
    assert!(w.session("SGC1").has_recoverable());
    w.ok(
        "admin",
        World::cmd("SGC1", SessionCommand::RestoreBackupToProduction(fresh)),
    );
}

#[test]
fn manual_expiry_is_off_by_default_and_held_to_the_minimum() {
    let mut w = sgc_world();
    for _ in 0..4 {
        backup(&mut w);
        w.advance(MIN);
    }
    let ids: Vec<u64> = w.session("SGC1").backups().iter().map(|b| b.id).collect();
    let r = w.refused(
        "admin",
        World::cmd("SGC1", SessionCommand::ExpireBackup(ids[1])),
        0x1302,
    );
    assert!(
        r.message
            .text
            .contains("does not allow backups to be manually expired"),
        "{r:?}"
    );
    w.set(
        "SGC1",
        Properties::Sgc(SgcProperties {
            policy: SgcPolicy {
                allow_manual_expiry: true,
                min_kept: 2,
                ..SgcPolicy::default()
            },
            host_system: None,
        }),
    );
    w.refused(
        "admin",
        World::cmd("SGC1", SessionCommand::ExpireBackup(ids[2])),
        0x1304,
    );
    w.ok(
        "admin",
        World::cmd("SGC1", SessionCommand::ExpireBackup(ids[1])),
    );
    let left: Vec<u64> = w.session("SGC1").backups().iter().map(|b| b.id).collect();
    assert_eq!(left, ids[2..].to_vec());
    // The box agrees.
    assert_eq!(
        w.h.boxes[SERIAL].list_backups(VolumeId(0)).unwrap().len(),
        2
    );
}

/// Retention runs when a backup makes an older one expirable, with no scheduled task
/// or other timer to wake the engine (found by pyCSM driving the real gateway).
#[test]
fn retention_runs_after_a_manual_backup_without_any_timer() {
    let mut w = sgc_world();
    w.set(
        "SGC1",
        Properties::Sgc(SgcProperties {
            policy: SgcPolicy {
                min_interval_ms: 0,
                retention_ms: MIN,
                min_kept: 3,
                allow_manual_expiry: false,
            },
            host_system: None,
        }),
    );
    for _ in 0..3 {
        backup(&mut w);
        w.advance(2_000);
    }
    w.advance(2 * MIN);
    for _ in 0..2 {
        backup(&mut w);
        w.advance(2_000);
    }
    // Nothing else is scheduled: the engine asks to be woken for retention itself.
    assert!(w.h.engine.state().tasks.is_empty());
    w.advance(0);
    let s = w.session("SGC1");
    assert_eq!(s.backups().len(), 3, "{:?}", s.backups());
    assert!(!w.h.messages("IWNR8014I").is_empty(), "retention never ran");
    // Nothing is due now (only the periodic reconciliation, a period away).
    let next = w.h.engine.next_deadline();
    assert!(
        next.is_none_or(|d| d >= w.h.now_ms + w.h.engine.config().reconcile_every_ms / 2),
        "{next:?}"
    );
}

#[test]
fn minimum_time_between_backups_and_retention_keeps_the_minimum() {
    let mut w = sgc_world();
    w.set(
        "SGC1",
        Properties::Sgc(SgcProperties {
            policy: SgcPolicy {
                min_interval_ms: 30 * MIN,
                retention_ms: 120 * MIN,
                min_kept: 6,
                allow_manual_expiry: false,
            },
            host_system: None,
        }),
    );
    backup(&mut w);
    w.advance(10 * MIN);
    let r = w.refused("admin", World::cmd("SGC1", SessionCommand::Backup), 0x1301);
    assert!(r.message.text.contains("next is allowed"), "{r:?}");
    // A schedule every 30 minutes for 12 hours: retention (2 h from the last
    // recoverable backup) would keep about 5; the minimum keeps 6.
    w.ok(
        "admin",
        Command::CreateTask {
            description: String::new(),
            name: "every half hour".into(),
            session: "SGC1".into(),
            command: SessionCommand::Backup,
            schedule: Schedule::Interval {
                start_ms: w.h.now_ms + 20 * MIN,
                interval_ms: 30 * MIN,
            },
            enabled: true,
        },
    );
    w.advance(12 * 60 * MIN);
    let s = w.session("SGC1");
    assert_eq!(s.backups().len(), 6, "{:?}", s.backups());
    assert!(!w.h.messages("IWNR8014I").is_empty(), "retention never ran");
    assert_eq!(w.h.messages("IWNR2212I").len(), 24);
    // Shorter than 30 minutes is refused for backups.
    let r = w.refused(
        "admin",
        Command::CreateTask {
            description: String::new(),
            name: "too often".into(),
            session: "SGC1".into(),
            command: SessionCommand::Backup,
            schedule: Schedule::Interval {
                start_ms: w.h.now_ms,
                interval_ms: 29 * MIN,
            },
            enabled: true,
        },
        codes::BAD_SCHEDULE,
    );
    assert!(
        r.message.text.contains("at least 30 minutes apart"),
        "{r:?}"
    );
}

#[test]
fn missed_runs_are_run_once_and_reported() {
    let mut w = sgc_world();
    w.ok(
        "admin",
        Command::CreateTask {
            description: String::new(),
            name: "hourly".into(),
            session: "SGC1".into(),
            command: SessionCommand::Backup,
            schedule: Schedule::Interval {
                start_ms: w.h.now_ms + 60 * MIN,
                interval_ms: 60 * MIN,
            },
            enabled: true,
        },
    );
    // The server is down for five hours: one timeout arrives late.
    w.h.now_ms += 5 * 60 * MIN + 1;
    w.h.engine.handle_timeout(w.h.now_ms);
    w.h.pump();
    w.check();
    assert_eq!(w.session("SGC1").backups().len(), 1);
    let missed = w.h.messages("IWNR8016W");
    assert_eq!(missed.len(), 1);
    assert!(missed[0].text.contains("missed 4 runs"), "{missed:?}");
    let task = w.h.engine.state().tasks.values().next().unwrap();
    assert!(task.next_run_ms.unwrap() > w.h.now_ms);
}

#[test]
fn a_rolled_off_backup_is_a_warning() {
    let mut w = World::new(2000);
    // Volume 0003 has room for 1,500 saved tracks; 0002 is its recovery volume.
    w.create("SGC1", SessionType::Sgc, vec![cs(3, 2)]);
    let write_all = |w: &mut World, tag: u64| {
        let now = w.h.now_ms;
        let image = w.h.boxes.get_mut(SERIAL).unwrap();
        for t in 0..1000 {
            image.write_track(now, VolumeId(3), t, tag).unwrap();
        }
    };
    backup(&mut w);
    write_all(&mut w, 1);
    w.advance(MIN);
    backup(&mut w);
    write_all(&mut w, 2);
    w.h.pump();
    w.check();
    let warn = w.h.messages("IWNR8015W");
    assert_eq!(warn.len(), 1, "{:#?}", w.h.console);
    assert!(warn[0].text.contains("rolled off"));
    assert_eq!(w.session("SGC1").backups().len(), 1);
}

#[test]
fn operators_run_only_what_they_are_granted() {
    let mut w = sgc_world();
    w.refused("op", World::cmd("SGC1", SessionCommand::Backup), 0x1103);
    w.ok(
        "admin",
        Command::SetUserRole {
            name: "op".into(),
            role: Role::Operator,
            grant: Some(OperatorGrant {
                sessions: SessionScope::Named(BTreeSet::from(["SGC1".to_owned()])),
                actions: ActionScope::Selected(BTreeSet::from([SessionAction::Backup])),
            }),
        },
    );
    w.ok("op", World::cmd("SGC1", SessionCommand::Backup));
    w.advance(MIN);
    backup(&mut w);
    let first = w.session("SGC1").backups()[0].id;
    let r = w.refused(
        "op",
        World::cmd("SGC1", SessionCommand::RecoverBackup(first)),
        0x1104,
    );
    assert!(r.message.text.contains("Recover Backup"), "{r:?}");
    w.refused("mon", World::cmd("SGC1", SessionCommand::Backup), 0x1101);
    w.refused(
        "op",
        Command::CreateUser {
            name: "x".into(),
            role: Role::Administrator,
            grant: None,
            password_hash: "h".into(),
        },
        0x1102,
    );
    // An Operator who creates a session is granted it.
    w.ok(
        "op",
        Command::CreateSession {
            name: "OPS".into(),
            kind: SessionType::Fc,
            description: String::new(),
        },
    );
    let grant = w.h.engine.principal("op").unwrap().grant.unwrap();
    assert!(grant.manages("OPS"));
    // The refusals are in the audit trail.
    let refusals = w
        .h
        .journal
        .iter()
        .filter(|r| matches!(r, Record::Audit(e) if e.record.kind == zgate::policy::audit::AuditKind::Refusal))
        .count();
    assert_eq!(refusals, 4);
}

#[test]
fn dual_control_in_safeguarded_copy_mode() {
    let mut w = sgc_world();
    w.ok(
        "admin",
        Command::SetUserRole {
            name: "op".into(),
            role: Role::Operator,
            grant: Some(OperatorGrant {
                sessions: SessionScope::All,
                actions: ActionScope::Default,
            }),
        },
    );
    // Turning it on takes two administrators.
    let r = w.run(
        "admin",
        Command::SetDualControlMode(DualControlMode::SafeguardedCopy),
    );
    let Outcome::Requested(mode_request) = r.outcome else {
        panic!("{r:?}")
    };
    assert_eq!(w.h.engine.state().dual.mode(), DualControlMode::Off);
    w.refused("admin", Command::Approve { id: mode_request }, 0x1202);
    w.ok("admin2", Command::Approve { id: mode_request });
    assert_eq!(
        w.h.engine.state().dual.mode(),
        DualControlMode::SafeguardedCopy
    );
    // Approving it again says it is decided, not that authority is missing.
    let again = w.run("admin2", Command::Approve { id: mode_request });
    assert!(matches!(again.outcome, Outcome::Refused(_)), "{again:?}");
    assert_eq!(again.message.id.to_string(), "IWNR8012E", "{again:?}");
    assert!(again.message.text.contains("is not pending"), "{again:?}");

    // Backups need no approval.
    w.ok("op", World::cmd("SGC1", SessionCommand::Backup));
    w.advance(MIN);
    w.ok("op", World::cmd("SGC1", SessionCommand::Backup));
    let first = w.session("SGC1").backups()[0].id;
    // A recover becomes a request; nothing runs until a second user approves.
    let executed = w.h.executed.len();
    let r = w.run(
        "op",
        World::cmd("SGC1", SessionCommand::RecoverBackup(first)),
    );
    let Outcome::Requested(id) = r.outcome else {
        panic!("{r:?}")
    };
    assert_eq!(r.message.id.to_string(), "IWNR8003W");
    assert_eq!(w.h.executed.len(), executed);
    w.refused("op", Command::Approve { id }, 0x1202);
    w.refused("mon", Command::Approve { id }, 0x1101);
    let r = w.ok("admin", Command::Approve { id });
    assert_eq!(r.message.id.to_string(), "IWNR8002I", "{r:?}");
    assert_eq!(w.session("SGC1").recovered(), Some(first));
    // Approved once, run once.
    w.refused("admin2", Command::Approve { id }, 0x1201);
    let recovers =
        w.h.executed
            .iter()
            .filter(|a| matches!(a.op, zgate::policy::storage::StorageOp::Recover { .. }))
            .count();
    assert_eq!(recovers, 1);

    // Reject with a comment; cancel by the requester only; expiry.
    let r = w.run("op", World::cmd("SGC1", SessionCommand::Terminate));
    let Outcome::Requested(id) = r.outcome else {
        panic!("{r:?}")
    };
    let r = w.ok(
        "admin",
        Command::Reject {
            id,
            comment: "not during business hours".into(),
        },
    );
    assert_eq!(r.message.id.to_string(), "IWNR2605I");
    assert!(r.message.text.contains("not during business hours"));
    let r = w.run("op", World::cmd("SGC1", SessionCommand::TerminateH1R1));
    let Outcome::Requested(id) = r.outcome else {
        panic!("{r:?}")
    };
    w.refused("admin", Command::Cancel { id }, 0x1203);
    w.ok("op", Command::Cancel { id });
    let r = w.run("op", World::cmd("SGC1", SessionCommand::TerminateH1R1));
    let Outcome::Requested(id) = r.outcome else {
        panic!("{r:?}")
    };
    w.advance(25 * 60 * MIN);
    assert_eq!(w.h.messages("IWNR8006W").len(), 1);
    w.refused("admin", Command::Approve { id }, 0x1201);
    assert_eq!(w.session("SGC1").recovered(), Some(first));
}

#[test]
fn approval_prepares_the_command_again() {
    let mut w = sgc_world();
    let r = w.run(
        "admin",
        Command::SetDualControlMode(DualControlMode::FullProtection),
    );
    let Outcome::Requested(id) = r.outcome else {
        panic!()
    };
    w.ok("admin2", Command::Approve { id });
    // Two requests to remove the same session: the second approval finds it gone.
    let r1 = w.run(
        "admin",
        Command::RemoveSession {
            name: "SGC1".into(),
        },
    );
    let r2 = w.run(
        "admin",
        Command::RemoveSession {
            name: "SGC1".into(),
        },
    );
    let (Outcome::Requested(a), Outcome::Requested(b)) = (r1.outcome, r2.outcome) else {
        panic!("{r1:?} {r2:?}")
    };
    w.ok("admin2", Command::Approve { id: a });
    assert!(!w.h.engine.state().sessions.contains_key("SGC1"));
    w.refused("admin2", Command::Approve { id: b }, codes::UNKNOWN_SESSION);
}

#[test]
fn the_last_administrator_stays() {
    let mut w = World::new(2000);
    w.ok(
        "admin",
        Command::RemoveUser {
            name: "admin2".into(),
        },
    );
    w.refused(
        "admin",
        Command::SetUserRole {
            name: "admin".into(),
            role: Role::Monitor,
            grant: None,
        },
        codes::LAST_ADMINISTRATOR,
    );
    w.refused(
        "admin",
        Command::RemoveUser {
            name: "admin".into(),
        },
        codes::BAD_USER,
    );
}

/// The box's state the faults tests look at: backups of volume 0, relationships,
/// frozen LSSs.
fn box_backups(w: &World, v: u16) -> Vec<u64> {
    w.h.boxes[SERIAL]
        .list_backups(VolumeId(v))
        .unwrap()
        .iter()
        .map(|b| b.id)
        .collect()
}

fn frozen(w: &World) -> Vec<zgate::ds8k::ids::Lss> {
    w.h.boxes[SERIAL].frozen_lsss()
}

fn ids_of(w: &World) -> Vec<String> {
    w.h.console.iter().map(|m| m.id.to_string()).collect()
}

fn persistent_fc(w: &mut World) {
    w.create("FC1", SessionType::Fc, vec![cs(6, 7)]);
    w.set(
        "FC1",
        Properties::Fc(FcProperties {
            persistent: true,
            ..FcProperties::default()
        }),
    );
}

#[test]
fn a_backup_whose_answer_is_lost_is_found_on_the_box_not_taken_again() {
    let mut w = sgc_world();
    w.h.faults.push_back(Fault::LoseAnswer);
    let r = backup(&mut w);
    let Outcome::Started(action) = r.outcome else {
        panic!("{r:?}")
    };
    // The box took it once; the engine asked the box and adopted it.
    assert_eq!(w.h.carried_out.get(&action), Some(&1));
    assert_eq!(box_backups(&w, 0).len(), 1);
    let s = w.session("SGC1");
    assert_eq!(s.backups().len(), 1, "{s:?}");
    assert_eq!(s.backups()[0].id, box_backups(&w, 0)[0]);
    assert!(s.busy.is_none());
    let ids = ids_of(&w);
    assert!(ids.contains(&"IWNR8019W".to_string()), "{ids:?}");
    assert!(ids.contains(&"IWNR8020I".to_string()), "{ids:?}");
    assert_eq!(ids.last().map(String::as_str), Some("IWNR1026I"));
    // Not wedged: the next backup runs.
    w.advance(MIN);
    backup(&mut w);
    assert_eq!(w.session("SGC1").backups().len(), 2);
    assert_eq!(box_backups(&w, 0).len(), 2);
}

#[test]
fn a_backup_whose_request_is_lost_fails_once_the_box_can_no_longer_take_it() {
    let mut w = sgc_world();
    w.h.faults.push_back(Fault::LoseRequest);
    let r = backup(&mut w);
    let Outcome::Started(action) = r.outcome else {
        panic!("{r:?}")
    };
    // Before the request's deadline the box might still take it: the session waits.
    assert!(w.session("SGC1").busy.is_some());
    assert_eq!(w.session("SGC1").status, SessionStatus::Severe);
    w.advance(2 * MIN);
    let s = w.session("SGC1");
    assert!(s.busy.is_none(), "{s:?}");
    assert!(s.backups().is_empty());
    assert!(
        s.last_error.as_deref().unwrap_or("").contains("0x0d28"),
        "{s:?}"
    );
    assert!(!w.h.carried_out.contains_key(&action));
    assert!(box_backups(&w, 0).is_empty());
    let last = w.h.console.last().unwrap();
    assert_eq!(last.id.to_string(), "IWNR8013E", "{last:?}");
    // Not wedged.
    backup(&mut w);
    assert_eq!(w.session("SGC1").backups().len(), 1);
}

#[test]
fn a_flash_whose_answer_is_lost_is_adopted_and_its_freeze_thawed() {
    let mut w = World::new(10);
    persistent_fc(&mut w);
    w.h.faults.push_back(Fault::LoseAnswer);
    let r = w.ok("admin", World::cmd("FC1", SessionCommand::Flash));
    let Outcome::Started(action) = r.outcome else {
        panic!("{r:?}")
    };
    assert_eq!(w.h.carried_out.get(&action), Some(&1));
    assert!(frozen(&w).is_empty(), "LSS left frozen");
    let ids = ids_of(&w);
    assert!(ids.contains(&"IWNR8021W".to_string()), "{ids:?}");
    let s = w.session("FC1");
    assert_eq!(s.state, SessionState::TargetAvailable, "{s:?}");
    assert!(s.busy.is_none());
    // A host write to the source flows.
    let now = w.h.now_ms;
    w.h.boxes
        .get_mut(SERIAL)
        .unwrap()
        .write_track(now, VolumeId(6), 1, 7)
        .unwrap();
    // Not wedged: the next Flash (withdraw + establish) and Terminate run.
    w.ok("admin", World::cmd("FC1", SessionCommand::Flash));
    assert_eq!(w.session("FC1").status, SessionStatus::Normal);
    w.ok("admin", World::cmd("FC1", SessionCommand::Terminate));
    assert_eq!(w.session("FC1").state, SessionState::Defined);
}

#[test]
fn a_restart_between_hand_off_and_answer_asks_the_box_and_thaws() {
    let mut w = World::new(10);
    persistent_fc(&mut w);
    w.h.hold = true;
    let r = w.ok("admin", World::cmd("FC1", SessionCommand::Flash));
    let Outcome::Started(action) = r.outcome else {
        panic!("{r:?}")
    };
    // The server dies with the establish handed to the box; a new engine starts from
    // the journal. It does not send the establish again.
    w.h.restart();
    w.check();
    let sent = w.h.executed.iter().filter(|a| a.id == action).count();
    assert_eq!(sent, 0, "nothing reached the box yet");
    // The box now takes the old request (before its deadline): the relationship is
    // made and its LSS frozen, and nobody is left to thaw it but the new engine.
    w.h.release();
    w.check();
    assert_eq!(w.h.carried_out.get(&action), Some(&1));
    assert_eq!(
        w.h.executed.iter().filter(|a| a.id == action).count(),
        1,
        "the establish went to the box once"
    );
    assert!(frozen(&w).is_empty(), "LSS left frozen");
    let s = w.session("FC1");
    assert_eq!(s.state, SessionState::TargetAvailable, "{s:?}");
    assert!(s.busy.is_none());
    w.ok("admin", World::cmd("FC1", SessionCommand::Flash));
    assert_eq!(w.session("FC1").status, SessionStatus::Normal);
}

#[test]
fn a_box_stalled_past_the_deadline_refuses_the_late_request_and_the_session_goes_on() {
    let mut w = sgc_world();
    persistent_fc(&mut w);
    w.h.hold = true;
    let flash = w.ok("admin", World::cmd("FC1", SessionCommand::Flash));
    let take = backup(&mut w);
    // Past the deadline both outcomes are unknown, not failed.
    w.advance(90_000);
    assert_eq!(w.session("FC1").status, SessionStatus::Severe);
    assert!(w.session("FC1").busy.is_some());
    assert!(w.session("SGC1").busy.is_some());
    // The box resumes and takes the queued requests: too late, it refuses them.
    w.h.release();
    w.advance(10_000);
    for r in [flash, take] {
        let Outcome::Started(action) = r.outcome else {
            panic!("{r:?}")
        };
        assert!(!w.h.carried_out.contains_key(&action));
    }
    assert!(frozen(&w).is_empty());
    assert!(box_backups(&w, 0).is_empty());
    for name in ["FC1", "SGC1"] {
        let s = w.session(name);
        assert!(s.busy.is_none(), "{s:?}");
        assert!(
            s.last_error.as_deref().unwrap_or("").contains("0x0d28"),
            "{s:?}"
        );
    }
    // Neither is wedged.
    w.ok("admin", World::cmd("FC1", SessionCommand::Flash));
    assert_eq!(w.session("FC1").state, SessionState::TargetAvailable);
    backup(&mut w);
    assert_eq!(w.session("SGC1").backups().len(), 1);
    assert_eq!(box_backups(&w, 0).len(), 1);
}

#[test]
fn a_restart_thaws_an_lss_left_frozen_with_nothing_under_way() {
    let mut w = World::new(10);
    persistent_fc(&mut w);
    // Someone's consistency group froze FC1's source LSS and never thawed it.
    let now = w.h.now_ms;
    w.h.boxes
        .get_mut(SERIAL)
        .unwrap()
        .establish_flash(
            now,
            &[zgate::ds8k::PairKey {
                source: VolumeId(6),
                target: VolumeId(4),
            }],
            zgate::ds8k::FlashOptions(zgate::ds8k::FlashOptions::FREEZE),
        )
        .unwrap();
    assert!(!frozen(&w).is_empty());
    w.h.restart();
    w.check();
    assert!(frozen(&w).is_empty());
    assert!(ids_of(&w).contains(&"IWNR8021W".to_string()));
}

#[test]
fn a_restart_in_the_middle_of_a_copy_polls_it_to_the_end() {
    let mut w = World::new(10);
    w.create("FC1", SessionType::Fc, vec![cs(4, 5)]);
    w.ok("admin", World::cmd("FC1", SessionCommand::Flash));
    w.advance(MIN);
    assert!(w.session("FC1").copying);
    // A new engine from the journal: its first deadline is now, which arms the poll.
    w.h.engine = Engine::replay(w.h.engine.config(), &w.h.journal);
    assert_eq!(w.h.engine.next_deadline(), Some(0));
    w.advance(10 * MIN);
    assert!(!w.session("FC1").copying);
    assert_eq!(w.h.messages("IWNR2772I").len(), 1);
}

#[test]
fn user_names_are_unique_without_regard_to_case() {
    let mut w = World::new(10);
    let r = w.refused(
        "admin",
        Command::CreateUser {
            name: "ADMIN".into(),
            role: Role::Administrator,
            grant: None,
            password_hash: zgate::harness::TEST_PASSWORD_HASH.into(),
        },
        codes::BAD_USER,
    );
    assert!(r.message.text.contains("without regard to case"), "{r:?}");
    assert!(w.h.engine.state().users.contains_key("admin"));
    assert!(!w.h.engine.state().users.contains_key("ADMIN"));
}

#[test]
fn a_user_administrator_manages_monitors_and_operators_only() {
    let mut w = World::new(10);
    let r = w.h.add_user("admin", "ua", Role::UserAdministrator, None);
    assert_eq!(r.outcome, Outcome::Done, "{r:?}");
    let user = |name: &str, role| Command::CreateUser {
        name: name.into(),
        role,
        grant: None,
        password_hash: zgate::harness::TEST_PASSWORD_HASH.into(),
    };
    // Monitors and Operators: yes.
    w.ok("ua", user("mon2", Role::Monitor));
    w.ok(
        "ua",
        Command::SetUserRole {
            name: "mon2".into(),
            role: Role::Operator,
            grant: None,
        },
    );
    w.ok(
        "ua",
        Command::SetPassword {
            name: "mon2".into(),
            password_hash: zgate::harness::TEST_PASSWORD_HASH.into(),
        },
    );
    // Its own password: yes.
    w.ok(
        "ua",
        Command::SetPassword {
            name: "ua".into(),
            password_hash: zgate::harness::TEST_PASSWORD_HASH.into(),
        },
    );
    // The high roles: no, whoever the target.
    w.refused("ua", user("boss", Role::Administrator), 0x1102);
    w.refused("ua", user("ua2", Role::UserAdministrator), 0x1102);
    for command in [
        Command::SetUserRole {
            name: "ua".into(),
            role: Role::Administrator,
            grant: None,
        },
        Command::SetUserRole {
            name: "mon2".into(),
            role: Role::Administrator,
            grant: None,
        },
        Command::SetUserRole {
            name: "admin2".into(),
            role: Role::Monitor,
            grant: None,
        },
        Command::SetPassword {
            name: "admin".into(),
            password_hash: zgate::harness::TEST_PASSWORD_HASH.into(),
        },
        Command::RemoveUser {
            name: "admin2".into(),
        },
    ] {
        let r = w.refused("ua", command, 0x1102);
        assert!(
            r.message.text.contains("needs the Administrator role"),
            "{r:?}"
        );
    }
    assert_eq!(w.h.engine.state().users["admin2"].role, Role::Administrator);
    assert_eq!(w.h.engine.state().users["ua"].role, Role::UserAdministrator);
}

#[test]
fn the_periodic_reconciliation_adopts_an_orphan_backup_and_drops_a_vanished_one() {
    let mut w = sgc_world();
    backup(&mut w);
    w.advance(MIN);
    backup(&mut w);
    // Nothing changed: the reconciliation reads the first H1's backups alone.
    let every = w.h.engine.config().reconcile_every_ms;
    let lists = |w: &World, from: usize| -> Vec<usize> {
        w.h.executed[from..]
            .iter()
            .filter_map(|a| match &a.op {
                zgate::policy::storage::StorageOp::ListBackups { volumes } => Some(volumes.len()),
                _ => None,
            })
            .collect()
    };
    let from = w.h.executed.len();
    w.advance(2 * every);
    let read = lists(&w, from);
    assert!(!read.is_empty() && read.iter().all(|&n| n == 1), "{read:?}");
    // Out of band: a backup of both H1s nobody asked zgate for; the oldest expired.
    let from = w.h.executed.len();
    let now = w.h.now_ms;
    let first = w.session("SGC1").backups()[0].id;
    let image = w.h.boxes.get_mut(SERIAL).unwrap();
    let orphan = image
        .take_backup(now + 1_000, &[VolumeId(0), VolumeId(1)])
        .unwrap();
    image.expire_backup(first).unwrap();
    w.advance(2 * every);
    // The first H1's list differed from the session's: then every H1's was read.
    assert!(lists(&w, from).contains(&2), "{:?}", lists(&w, from));
    let listed: Vec<u64> = w.session("SGC1").backups().iter().map(|b| b.id).collect();
    assert!(
        listed.contains(&orphan.id),
        "the orphan is adopted: {listed:?}"
    );
    assert!(
        !listed.contains(&first),
        "the vanished one is dropped: {listed:?}"
    );
    assert_eq!(listed.len(), 2);
    let ids = ids_of(&w);
    assert!(ids.contains(&"IWNR8022W".to_string()), "{ids:?}");
}

#[test]
fn names_and_descriptions_refuse_characters_that_change_how_text_reads() {
    let mut w = World::new(10);
    for bad in ["FC\u{202E}1", "\u{2066}FC1", "F\u{200B}C1"] {
        w.refused(
            "admin",
            Command::CreateSession {
                name: bad.into(),
                kind: SessionType::Fc,
                description: String::new(),
            },
            codes::BAD_PROPERTY,
        );
    }
    w.create("FC1", SessionType::Fc, vec![]);
    w.refused(
        "admin",
        Command::SetDescription {
            session: "FC1".into(),
            description: "backup done \u{202E}delia".into(),
        },
        codes::BAD_PROPERTY,
    );
    // Letters of any script are fine.
    w.ok(
        "admin",
        Command::SetDescription {
            session: "FC1".into(),
            description: "Sicherung für Zürich".into(),
        },
    );
}

#[test]
fn a_task_run_by_hand_reports_like_a_scheduled_run() {
    let mut w = sgc_world();
    w.ok(
        "admin",
        Command::CreateTask {
            description: "Hourly backup for the auditors".into(),
            name: "hourly".into(),
            session: "SGC1".into(),
            command: SessionCommand::Backup,
            schedule: Schedule::Interval {
                start_ms: w.h.now_ms + 60 * MIN,
                interval_ms: 60 * MIN,
            },
            enabled: false,
        },
    );
    let id = *w.h.engine.state().tasks.keys().next().unwrap();
    w.ok("admin", Command::RunTask { id });
    let task = &w.h.engine.state().tasks[&id];
    assert_eq!(task.description, "Hourly backup for the auditors");
    let last = task.last_result.clone().unwrap_or_default();
    assert!(last.starts_with("IWNR"), "{last}");
    assert_eq!(w.h.messages("IWNR2212I").len(), 1);
    assert_eq!(w.session("SGC1").backups().len(), 1);
}

/// The bytes a session change writes (policy.md §8.1), given `copy_sets` copy sets
/// in the changed SGC session and `others` other sessions: (description change,
/// properties change, the session record of a backup taken).
fn bytes_of_changes(copy_sets: u16, others: usize) -> (usize, usize, usize) {
    let mut h = Harness::with_admin(EngineConfig::default(), "admin");
    let volumes: Vec<_> = (0..copy_sets * 2)
        .map(|v| {
            (
                VolumeId(v),
                VolumeKind::ckd(10),
                if v < copy_sets { 150 } else { 0 },
            )
        })
        .collect();
    h.add_box("admin", SERIAL, ImageConfig::default(), &volumes)
        .unwrap();
    for i in 0..=others {
        let name = if i == 0 {
            "BIG".to_owned()
        } else {
            format!("S{i:05}")
        };
        h.command(
            "admin",
            Command::CreateSession {
                name,
                kind: SessionType::Sgc,
                description: String::new(),
            },
        );
    }
    let sets = (0..copy_sets).map(|v| cs(v, copy_sets + v)).collect();
    let reply = h.command(
        "admin",
        Command::AddCopySets {
            session: "BIG".into(),
            copy_sets: sets,
        },
    );
    assert!(matches!(reply.outcome, Outcome::Started(_)), "{reply:?}");
    assert_eq!(
        h.engine.state().sessions["BIG"].copy_sets.len(),
        copy_sets as usize
    );
    let size = |records: &[Record]| -> usize {
        records
            .iter()
            .map(|r| serde_json::to_vec(r).unwrap().len())
            .sum()
    };
    let written = |h: &mut Harness, command: Command| {
        let from = h.journal.len();
        let reply = h.command("admin", command);
        assert!(!reply.message.is_error(), "{reply:?}");
        h.journal[from..].to_vec()
    };
    let description = written(
        &mut h,
        Command::SetDescription {
            session: "BIG".into(),
            description: "the whole box, every 30 minutes".into(),
        },
    );
    let properties = written(
        &mut h,
        Command::PatchProperties {
            session: "BIG".into(),
            patch: zgate::policy::session::PropertiesPatch {
                retention_ms: Some(7 * 24 * 60 * MIN),
                ..Default::default()
            },
        },
    );
    let backup = written(&mut h, World::cmd("BIG", SessionCommand::Backup));
    let backup_taken: Vec<Record> = backup
        .into_iter()
        .filter(|r| matches!(r, Record::SessionChanged { .. }))
        .collect();
    assert!(!backup_taken.is_empty());
    let replayed = Engine::replay(h.engine.config(), &h.journal);
    assert_eq!(replayed.state(), h.engine.state());
    (size(&description), size(&properties), size(&backup_taken))
}

/// policy.md §8.1: a change to a session writes the change, so its size does not
/// depend on the number of copy sets in the session or of sessions on the server
/// (the audit entry's sequence number may gain a digit: a few bytes of slack).
#[test]
fn a_session_change_writes_the_same_bytes_whatever_the_size_of_the_state() {
    let small = bytes_of_changes(4, 0);
    for (copy_sets, others) in [(2_000, 0), (4, 300)] {
        let big = bytes_of_changes(copy_sets, others);
        for (what, s, b) in [
            ("description", small.0, big.0),
            ("properties", small.1, big.1),
            ("backup taken", small.2, big.2),
        ] {
            assert!(
                b <= s + 8,
                "{what}: {b} bytes with {copy_sets} copy sets and {others} other sessions, {s} with 4"
            );
        }
        assert!(big.0 < 1_024 && big.1 < 1_024 && big.2 < 1_024, "{big:?}");
    }
}

/// policy.md §5.1: an FC session holds at most 32,640 copy sets (a whole image in
/// pairs, one request to the box), an SGC session 65,280 (every volume), and a
/// session bound to a host system runs commands only up to the 2,048 pairs the host
/// protocols carry.
#[test]
fn copy_set_limits_hold_for_the_session_and_the_host_route() {
    use zgate::policy::engine::{
        MAX_COPY_SETS, MAX_HOST_ROUTE_COPY_SETS, MAX_PAIRED_COPY_SETS, max_copy_sets,
    };
    const { assert!(MAX_HOST_ROUTE_COPY_SETS <= zgate::proto::zos::messages::MAX_PAIRS) };
    const { assert!(MAX_HOST_ROUTE_COPY_SETS <= zgate::proto::ztpf::messages::MAX_PAIRS) };
    assert_eq!(
        MAX_PAIRED_COPY_SETS,
        zgate::proto::ds8k::messages::MAX_PAIRS
    );
    assert_eq!(max_copy_sets(SessionType::Fc), MAX_PAIRED_COPY_SETS);
    assert_eq!(MAX_COPY_SETS, 65_280);
    assert_eq!(max_copy_sets(SessionType::Sgc), MAX_COPY_SETS);
    let n = MAX_HOST_ROUTE_COPY_SETS as u16 + 1;
    let mut h = Harness::with_admin(EngineConfig::default(), "admin");
    let volumes: Vec<_> = (0..n * 2)
        .map(|v| (VolumeId(v), VolumeKind::ckd(10), 0))
        .collect();
    h.add_box("admin", SERIAL, ImageConfig::default(), &volumes)
        .unwrap();
    h.command(
        "admin",
        Command::CreateSession {
            name: "BIG".into(),
            kind: SessionType::Fc,
            description: String::new(),
        },
    );
    let too_many = Command::AddCopySets {
        session: "BIG".into(),
        copy_sets: (0..=MAX_PAIRED_COPY_SETS as u32)
            .map(|i| cs((i % 0xFF00) as u16, 0))
            .collect(),
    };
    let reply = h.command("admin", too_many);
    assert_eq!(
        reply.outcome,
        Outcome::Refused(codes::BAD_COPY_SET),
        "{reply:?}"
    );
    assert!(
        reply.message.text.contains("32640"),
        "{}",
        reply.message.text
    );
    let reply = h.command(
        "admin",
        Command::AddCopySets {
            session: "BIG".into(),
            copy_sets: (0..n).map(|i| cs(i, n + i)).collect(),
        },
    );
    assert!(matches!(reply.outcome, Outcome::Started(_)), "{reply:?}");
    h.command(
        "admin",
        Command::DefineHostConnection(HostConnection {
            system: "SYSA".into(),
            kind: HostKind::Zos,
            address: "127.0.0.1".into(),
            port: 5858,
            user: "HOSTUSR".into(),
            credential: HostCredential::PassTicket {
                key: Sealed(vec![1; 40]),
                application: "IOSHMCSM".into(),
            },
        }),
    );
    h.command(
        "admin",
        Command::PatchProperties {
            session: "BIG".into(),
            patch: zgate::policy::session::PropertiesPatch {
                host_system: Some(Some("SYSA".into())),
                ..Default::default()
            },
        },
    );
    let flash = Command::Run {
        session: "BIG".into(),
        command: SessionCommand::Flash,
    };
    let reply = h.command("admin", flash.clone());
    assert_eq!(
        reply.outcome,
        Outcome::Refused(codes::BAD_COPY_SET),
        "{reply:?}"
    );
    assert!(
        reply.message.text.contains("2048"),
        "{}",
        reply.message.text
    );
    let reply = h.command(
        "admin",
        Command::RemoveCopySets {
            session: "BIG".into(),
            h1: vec![vol(0)],
        },
    );
    assert!(!reply.message.is_error(), "{reply:?}");
    let reply = h.command("admin", flash);
    assert!(matches!(reply.outcome, Outcome::Started(_)), "{reply:?}");
}

/// policy.md §10: server properties are an Administrator's, checked by name and
/// bounds, written as records (so a replay and a standby hold them), and take
/// effect: the copy poll runs at the new interval, a new request lives the new life.
#[test]
fn server_properties_are_an_administrators_and_take_effect() {
    use zgate::policy::server_properties::{COPY_POLL, REQUEST_LIFETIME};
    let mut w = World::new(10);
    let set = |name: &str, value: &str| Command::SetServerProperty {
        name: name.into(),
        value: value.into(),
    };
    w.refused("op", set(COPY_POLL, "5"), 0x1102);
    w.refused("mon", set(COPY_POLL, "5"), 0x1101);
    let r = w.refused("admin", set("zgate.nope", "5"), 0x140D);
    assert!(r.message.text.contains(COPY_POLL), "{r:?}");
    w.refused("admin", set(COPY_POLL, "0"), 0x140D);
    w.refused("admin", set(COPY_POLL, "soon"), 0x140D);
    assert!(w.h.engine.state().properties.is_empty());
    let r = w.ok("admin", set(COPY_POLL, "5"));
    assert!(r.message.text.contains("was set to 5"), "{r:?}");
    assert_eq!(w.h.engine.copy_poll_interval_ms(), 5_000);
    assert!(matches!(
        w.h.journal
            .iter()
            .rev()
            .find(|r| matches!(r, Record::ServerProperty { .. })),
        Some(Record::ServerProperty { value: 5, .. })
    ));
    // A background copy is now polled every 5 s, not 30 s.
    w.create("FC1", SessionType::Fc, vec![cs(4, 5)]);
    w.ok("admin", World::cmd("FC1", SessionCommand::Flash));
    let now = w.h.now_ms;
    let next = w.h.engine.next_deadline().unwrap();
    assert!(
        next <= now + 5_000,
        "the next poll is {} ms away",
        next - now
    );
    // A request filed now lives 120 s.
    w.ok("admin", set(REQUEST_LIFETIME, "120"));
    let r = w.run(
        "admin",
        Command::SetDualControlMode(DualControlMode::SafeguardedCopy),
    );
    assert!(matches!(r.outcome, Outcome::Requested(_)), "{r:?}");
    let request = w.h.engine.state().dual.pending().next().unwrap().clone();
    assert_eq!(request.expires_ms, w.h.now_ms + 120_000);
}

/// policy.md §5.1, §5.3: an SGC copy set may have no recovery volume (R1). Backup,
/// Restore and Expire take every H1; Recover writes to the copy sets that have an
/// R1, and is not offered (refused `COMMAND_NOT_VALID`) when none has. Every other
/// session type's copy set needs its partner.
#[test]
fn sgc_copy_sets_without_a_recovery_volume() {
    let alone = |h1: u16| CopySet {
        h1: vol(h1),
        partner: None,
    };
    let mut w = World::new(2000);
    w.create("FC1", SessionType::Fc, vec![]);
    w.refused(
        "admin",
        Command::AddCopySets {
            session: "FC1".into(),
            copy_sets: vec![alone(5)],
        },
        codes::BAD_COPY_SET,
    );
    w.create("SGC1", SessionType::Sgc, vec![alone(0), alone(1)]);
    assert_eq!(w.session("SGC1").copy_sets.len(), 2);
    let write = |w: &mut World, v: u16, tag: u64| {
        let now = w.h.now_ms;
        w.h.boxes
            .get_mut(SERIAL)
            .unwrap()
            .write_track(now, VolumeId(v), 3, tag)
            .unwrap();
    };
    write(&mut w, 0, 10);
    write(&mut w, 1, 11);
    backup(&mut w);
    // Both H1 volumes hold the backup.
    assert_eq!(box_backups(&w, 0), box_backups(&w, 1));
    w.advance(MIN);
    write(&mut w, 0, 20);
    backup(&mut w);
    let first = w.session("SGC1").backups()[0].id;
    let available = w.h.engine.available_commands("SGC1").unwrap();
    assert!(!available.contains(&"Recover Backup"), "{available:?}");
    assert!(
        available.contains(&"Restore Backup to Production"),
        "{available:?}"
    );
    w.refused(
        "admin",
        World::cmd("SGC1", SessionCommand::RecoverBackup(first)),
        codes::COMMAND_NOT_VALID,
    );
    w.ok(
        "admin",
        World::cmd("SGC1", SessionCommand::RestoreBackupToProduction(first)),
    );
    assert_eq!(w.h.boxes[SERIAL].read_track(VolumeId(0), 3).unwrap(), 10);

    // A copy set with an R1 joins: Recover writes to it alone.
    w.ok(
        "admin",
        Command::AddCopySets {
            session: "SGC1".into(),
            copy_sets: vec![cs(2, 6)],
        },
    );
    w.advance(MIN);
    write(&mut w, 2, 30);
    backup(&mut w);
    w.advance(MIN);
    write(&mut w, 2, 40);
    backup(&mut w);
    let third = w.session("SGC1").backups()[2].id;
    w.ok(
        "admin",
        World::cmd("SGC1", SessionCommand::RecoverBackup(third)),
    );
    assert_eq!(w.h.boxes[SERIAL].read_track(VolumeId(6), 3).unwrap(), 30);
}
