//! The durable store (protocol-specs/store.md): the engine's journal in redb on a
//! temp dir. Round trip, group commit from many writers, corruption found and named
//! (never a panic, never a silent loss), and a child process killed with SIGKILL at
//! random points losing no acknowledged change and leaving nothing half-done.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use proptest::prelude::*;
use zgate::fuzzing::engine::{Op, Runner};
use zgate::policy::engine::State;
use zgate::policy::engine::{Engine, Record};
use zgate::store::parts::note_touched;
use zgate::store::{Committer, SnapshotDelta, Store, StoreError};

/// A deterministic byte stream (xorshift) for operation sequences.
fn bytes(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// The journal of a run, cut at each step: (records, boundaries after each step).
fn journal_of(seed: u64) -> (Vec<Record>, Vec<usize>) {
    let mut runner = Runner::new();
    let mut bounds = vec![runner.harness.journal.len()];
    for op in Op::decode(&bytes(seed, 240)) {
        runner.step(&op);
        bounds.push(runner.harness.journal.len());
    }
    (runner.harness.journal.clone(), bounds)
}

#[test]
fn records_round_trip_and_replay() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zgate.redb");
    let (journal, bounds) = journal_of(7);
    {
        let mut store = Store::open(&path).unwrap();
        for w in bounds.windows(2) {
            store.append(&journal[w[0]..w[1]]).unwrap();
        }
        store.append(&journal[..bounds[0]]).unwrap();
    }
    let store = Store::open(&path).unwrap();
    let mut loaded = store.load().unwrap();
    // The first batch was written last here: put it back in journal order.
    let first = loaded.split_off(loaded.len() - bounds[0]);
    loaded.splice(0..0, first);
    assert_eq!(loaded, journal);
    let engine = Engine::replay(Default::default(), &loaded);
    assert_eq!(
        engine.state(),
        Engine::replay(Default::default(), &journal).state()
    );
}

#[test]
fn fifty_writers_group_commit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zgate.redb");
    let (journal, _) = journal_of(11);
    let store = Store::open(&path).unwrap();
    let (committer, handle) = Committer::spawn(store).unwrap();
    let threads: Vec<_> = (0..50)
        .map(|i| {
            let handle = handle.clone();
            let record = journal[i % journal.len()].clone();
            std::thread::spawn(move || {
                (0..20)
                    .map(|_| handle.commit(std::slice::from_ref(&record)).unwrap())
                    .collect::<Vec<u64>>()
            })
        })
        .collect();
    let mut acks: Vec<u64> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    drop(handle);
    let store = committer.finish().unwrap();
    acks.sort_unstable();
    assert_eq!(
        acks,
        (1..=1000).collect::<Vec<u64>>(),
        "every change acknowledged once"
    );
    assert_eq!(store.load().unwrap().len(), 1000);
}

/// A writer that hands in many batches without waiting learns of them in order with
/// one wait: the first batch always, then each one after it already durable; what
/// is not yet durable comes back to wait for again. A snapshot handed in between
/// them (sealed on its own thread) lands after the batches before it.
#[tokio::test]
async fn batches_are_learned_durable_in_order_with_one_wait_and_a_snapshot_lands_after_them() {
    use std::collections::VecDeque;
    use zgate::store::PendingCommit;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zgate.redb");
    let (journal, _) = journal_of(13);
    let store = Store::open(&path).unwrap();
    let (committer, handle) = Committer::spawn(store).unwrap();
    let mut pending: VecDeque<PendingCommit> = VecDeque::new();
    let mut snapshot = None;
    for (i, record) in journal.iter().take(40).enumerate() {
        pending.push_back(handle.submit(vec![record.clone()]).unwrap());
        if i == 19 {
            let state = Engine::replay(Default::default(), &journal[..20]).into_state();
            let delta = SnapshotDelta::full(&state);
            snapshot = Some(handle.submit_snapshot(20, delta, 1).unwrap());
        }
    }
    let mut learned = Vec::new();
    let mut waits = 0;
    while !pending.is_empty() {
        let before = pending.len();
        let (outcomes, rest) = PendingCommit::durable_prefix(pending).await;
        waits += 1;
        assert!(
            !outcomes.is_empty(),
            "every wait learns of one batch at least"
        );
        assert_eq!(outcomes.len() + rest.len(), before, "nothing lost");
        learned.extend(outcomes.into_iter().map(|o| o.unwrap().last));
        pending = rest;
    }
    assert_eq!(
        learned,
        (1..=40).collect::<Vec<u64>>(),
        "in order, each once"
    );
    assert!(waits <= 40);
    snapshot.unwrap().wait().await.unwrap();
    let (empty, rest) = PendingCommit::durable_prefix(VecDeque::new()).await;
    assert!(empty.is_empty() && rest.is_empty());
    drop(handle);
    let store = committer.finish().unwrap();
    let reader = store.reader();
    let (seq, _) = reader.snapshot_sealed().unwrap().expect("the snapshot");
    assert_eq!(seq, 20);
    assert_eq!(store.last_seq(), 40);
}

#[test]
fn a_newer_schema_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zgate.redb");
    Store::open(&path).unwrap();
    zgate::store::testing::set_schema_version(&path, 99).unwrap();
    let err = Store::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::TooNew { found: 99, .. }), "{err}");
    assert!(err.to_string().contains("schema version 99"), "{err}");
}

#[test]
fn corruption_is_an_error_never_a_panic_or_a_silent_loss() {
    let dir = tempfile::tempdir().unwrap();
    let clean = dir.path().join("clean.redb");
    let (journal, bounds) = journal_of(13);
    {
        let mut store = Store::open(&clean).unwrap();
        for w in bounds.windows(2) {
            store.append(&journal[w[0]..w[1]]).unwrap();
        }
    }
    let original = std::fs::read(&clean).unwrap();
    let expected = Store::open(&clean).unwrap().load().unwrap();
    let noise = bytes(99, 4096);
    let (mut errors, mut intact) = (0, 0);
    for case in 0..60usize {
        let mut damaged = original.clone();
        match case % 3 {
            // A run of flipped bytes somewhere in the file.
            0 | 1 => {
                let at = (usize::from(noise[case]) << 8 | usize::from(noise[case + 1]))
                    * original.len()
                    / 65536;
                for i in 0..16.min(damaged.len() - at) {
                    damaged[at + i] ^= noise[case * 16 + i] | 1;
                }
            }
            // Cut short.
            _ => damaged.truncate(original.len() * (case + 1) / 64),
        }
        let path = dir.path().join(format!("damaged-{case}.redb"));
        std::fs::write(&path, &damaged).unwrap();
        let result = std::panic::catch_unwind(|| Store::open(&path).and_then(|s| s.load()));
        match result {
            Err(_) => panic!("case {case}: the store panicked on a damaged file"),
            Ok(Err(e)) => {
                errors += 1;
                assert!(
                    e.to_string().contains("damaged-"),
                    "case {case}: the error does not name the file: {e}"
                );
            }
            Ok(Ok(loaded)) => {
                intact += 1;
                assert_eq!(
                    loaded, expected,
                    "case {case}: the store lost or changed records silently"
                );
            }
        }
    }
    assert!(errors > 0, "no damage was detected in 60 cases");
    eprintln!("corruption: {errors} detected, {intact} harmless");
}

/// The child's side of the crash test: journal each step's records durably, saying
/// WILL before and ACK after each commit.
#[test]
fn crash_child() {
    let Some(path) = std::env::var_os("ZGATE_CRASH_STORE") else {
        return;
    };
    let seed: u64 = std::env::var("ZGATE_CRASH_SEED").unwrap().parse().unwrap();
    let mut store = Store::open(Path::new(&path)).unwrap();
    let mut runner = Runner::new();
    let mut out = std::io::stdout().lock();
    let mut done = 0;
    let mut commit = |runner: &Runner, store: &mut Store, out: &mut std::io::StdoutLock| {
        let journal = &runner.harness.journal;
        writeln!(out, "WILL {}", journal.len()).unwrap();
        out.flush().unwrap();
        store.append(&journal[done..]).unwrap();
        done = journal.len();
        writeln!(out, "ACK {done}").unwrap();
        out.flush().unwrap();
    };
    commit(&runner, &mut store, &mut out);
    for op in Op::decode(&bytes(seed, 240)) {
        runner.step(&op);
        commit(&runner, &mut store, &mut out);
    }
    writeln!(out, "END").unwrap();
}

#[test]
fn sigkill_loses_no_acknowledged_change() {
    for (round, seed) in [3u64, 5, 8].into_iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("zgate.redb");
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
            .env("ZGATE_CRASH_STORE", &path)
            .env("ZGATE_CRASH_SEED", seed.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let kill_after = 3 + (bytes(seed, 1)[0] as usize) % 25 + round * 7;
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let (mut acked, mut will, mut acks) = (0usize, 0usize, 0);
        while let Some(Ok(line)) = lines.next() {
            if let Some(n) = line.strip_prefix("WILL ") {
                will = n.parse().unwrap();
                if acks >= kill_after {
                    break;
                }
            } else if let Some(n) = line.strip_prefix("ACK ") {
                acked = n.parse().unwrap();
                acks += 1;
            }
        }
        // SIGKILL, mid-commit or between commits.
        child.kill().unwrap();
        child.wait().unwrap();
        // What the child said between the line read last and the kill is still in
        // the pipe: it may have finished that commit and begun the next.
        for line in lines.map_while(Result::ok) {
            if let Some(n) = line.strip_prefix("WILL ") {
                will = n.parse().unwrap();
            } else if let Some(n) = line.strip_prefix("ACK ") {
                acked = n.parse().unwrap();
            }
        }
        assert!(acks >= kill_after.min(acks), "child ended early");
        let store = Store::open(&path).unwrap();
        let loaded = store.load().unwrap();
        let (journal, bounds) = journal_of(seed);
        assert!(
            loaded.len() >= acked,
            "round {round}: {acked} acknowledged, {} stored",
            loaded.len()
        );
        assert!(
            loaded.len() == acked || loaded.len() == will,
            "round {round}: {} stored is neither the last acknowledged ({acked}) nor the one in flight ({will})",
            loaded.len()
        );
        assert!(
            bounds.contains(&loaded.len()),
            "round {round}: a half-done step is stored"
        );
        assert_eq!(
            loaded[..],
            journal[..loaded.len()],
            "round {round}: stored records differ"
        );
        let engine = Engine::replay(Default::default(), &loaded);
        assert_eq!(engine.state().sessions.len(), 2);
        eprintln!(
            "round {round}: killed after {acks} commits; {acked} records acknowledged, {will} in flight, {} stored",
            loaded.len()
        );
    }
}

#[test]
fn secrets_are_sealed_in_the_journal_and_on_disk() {
    use zgate::harness::Harness;
    use zgate::policy::engine::Command as C;
    use zgate::policy::inventory::{HostConnection, HostCredential, HostKind};
    use zgate::store::sealing::SealingKey;
    const PLAIN: &str = "Passw0rd-Never-Stored";
    let key = SealingKey::generate().unwrap();
    let mut h = Harness::with_admin(Default::default(), "admin");
    let sealed = key.seal("SYSA password", PLAIN.as_bytes()).unwrap();
    let reply = h.command(
        "admin",
        C::DefineHostConnection(HostConnection {
            system: "SYSA".into(),
            kind: HostKind::Zos,
            address: "127.0.0.1".into(),
            port: 5858,
            user: "HOSTUSR".into(),
            credential: HostCredential::Password(sealed),
        }),
    );
    assert!(!reply.message.is_error(), "{reply:?}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zgate.redb");
    Store::open(&path).unwrap().append(&h.journal).unwrap();
    let file = std::fs::read(&path).unwrap();
    assert!(
        !file.windows(PLAIN.len()).any(|w| w == PLAIN.as_bytes()),
        "plain text on disk"
    );
    assert!(!format!("{:?}", h.engine.state()).contains(PLAIN));
    // It opens again from the store, for the object it was sealed for.
    let loaded = Store::open(&path).unwrap().load().unwrap();
    let engine = Engine::replay(Default::default(), &loaded);
    let HostCredential::Password(back) = &engine.state().hosts["SYSA"].credential else {
        panic!()
    };
    assert_eq!(
        &key.open("SYSA password", back).unwrap()[..],
        PLAIN.as_bytes()
    );
}

/// Journal records per segment in these tests.
const SEGMENT: u64 = 16;

/// How a test writes its snapshots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Snapshotting {
    /// The whole state each time.
    Whole,
    /// The parts the records since the last snapshot touched, as the gateway does
    /// (store.md §6.2).
    Changes,
}

/// Store `journal` in batches cut at `bounds`, taking a snapshot (with `keep`
/// records kept) after the batches listed in `snapshots`.
fn store_with_snapshots(
    path: &Path,
    journal: &[Record],
    bounds: &[usize],
    snapshots: &[usize],
    keep: u64,
) -> Store {
    store_snapshotting(path, journal, bounds, snapshots, keep, Snapshotting::Whole)
}

fn store_snapshotting(
    path: &Path,
    journal: &[Record],
    bounds: &[usize],
    snapshots: &[usize],
    keep: u64,
    how: Snapshotting,
) -> Store {
    // Small segments, so that compaction happens with a few hundred records.
    let mut store = Store::open_with_segments(path, SEGMENT).unwrap();
    store.begin_epoch().unwrap();
    store.append(&journal[..bounds[0]]).unwrap();
    let mut dirty = std::collections::BTreeSet::new();
    note_touched(&journal[..bounds[0]], &mut dirty);
    for (i, w) in bounds.windows(2).enumerate() {
        store.append(&journal[w[0]..w[1]]).unwrap();
        note_touched(&journal[w[0]..w[1]], &mut dirty);
        if i % 3 == 1 {
            store.begin_epoch().unwrap();
        }
        if snapshots.contains(&i) {
            let state = Engine::replay(Default::default(), &journal[..w[1]])
                .state()
                .clone();
            match how {
                Snapshotting::Whole => store.snapshot(w[1] as u64, &state, keep).unwrap(),
                Snapshotting::Changes => {
                    let delta = SnapshotDelta::of(&state, &std::mem::take(&mut dirty)).seal();
                    store.snapshot_delta(w[1] as u64, &delta, keep).unwrap();
                    // What the store holds now is the state at the snapshot, exactly.
                    let (at, held) = store.reader().snapshot().unwrap().unwrap();
                    assert_eq!(at, w[1] as u64);
                    assert_eq!(held, state);
                }
            }
        }
    }
    store
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// store.md §6: a restart from the newest snapshot plus the records after it
    /// rebuilds exactly the state a replay of the whole journal does, wherever the
    /// snapshots fell and however much journal they kept; snapshots written whole,
    /// or (as the gateway writes them, §6.2) as the parts the records since the last
    /// one touched, which must then hold exactly the state at their record.
    #[test]
    fn snapshot_plus_tail_equals_full_replay(
        seed in 1u64..1_000_000,
        picks in proptest::collection::vec(0usize..80, 0..6),
        keep in 0u64..40,
        changes in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("zgate.redb");
        let (journal, bounds) = journal_of(seed);
        let how = if changes { Snapshotting::Changes } else { Snapshotting::Whole };
        let store = store_snapshotting(&path, &journal, &bounds, &picks, keep, how);
        let full = Engine::replay(Default::default(), &journal).state().clone();
        drop(store);
        let store = Store::open(&path).unwrap();
        let recovered = store.recover().unwrap();
        let newest = picks.iter().filter(|&&i| i + 1 < bounds.len()).max();
        prop_assert_eq!(
            recovered.snapshot.as_ref().map(|(seq, _)| *seq),
            newest.map(|&i| bounds[i + 1] as u64)
        );
        let lifetime = zgate::policy::engine::EngineConfig::default().request_lifetime_ms;
        let mut state = recovered
            .snapshot
            .map_or_else(|| State::new(lifetime), |(_, s)| s);
        for r in &recovered.tail {
            state.apply(r);
        }
        prop_assert_eq!(&state, &full);
        // The audit trail survives compaction whole.
        let audit: Vec<_> = journal
            .iter()
            .filter_map(|r| match r {
                Record::Audit(e) => Some(e.clone()),
                _ => None,
            })
            .collect();
        prop_assert_eq!(store.audit_entries().unwrap(), audit);
    }
}

/// store.md §6: a reader resuming after any sequence number gets exactly the
/// records after it, in order, with the epoch each was written in; one that holds
/// less than the compacted journal is told to start from a snapshot.
#[test]
fn a_reader_resuming_anywhere_gets_exactly_what_follows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zgate.redb");
    let (journal, bounds) = journal_of(23);
    assert!(journal.len() > 100, "{}", journal.len());
    let store = store_with_snapshots(&path, &journal, &bounds, &[20], 10);
    let reader = store.reader();
    let first = store.first_seq().unwrap();
    let snapshot_at = bounds[21] as u64;
    // Compaction drops whole segments up to 10 records before the snapshot.
    assert_eq!(first, (snapshot_at - 10) / SEGMENT * SEGMENT + 1);
    assert!(first > 1);
    let last = store.last_seq();
    assert_eq!(last, journal.len() as u64);
    // Epochs as written: 1 from the start, then one more after every third batch.
    let mut epoch_of = vec![1u64; journal.len() + 1];
    let mut epoch = 1;
    for (i, w) in bounds.windows(2).enumerate() {
        for e in &mut epoch_of[w[0] + 1..=w[1]] {
            *e = epoch;
        }
        if i % 3 == 1 {
            epoch += 1;
        }
    }
    for after in 0..=last {
        let got = reader.since(after, usize::MAX);
        if after + 1 < first {
            assert!(
                matches!(got, Err(StoreError::Compacted { first: f, .. }) if f == first),
                "after {after}: {got:?}"
            );
            continue;
        }
        let got = got.unwrap();
        let expected: Vec<u64> = (after + 1..=last).collect();
        assert_eq!(got.iter().map(|s| s.seq).collect::<Vec<_>>(), expected);
        for s in &got {
            assert_eq!(s.record, journal[s.seq as usize - 1], "record {}", s.seq);
            assert_eq!(s.epoch, epoch_of[s.seq as usize], "epoch of {}", s.seq);
        }
        // In pages, too.
        let mut paged = Vec::new();
        let mut from = after;
        loop {
            let page = reader.since(from, 7).unwrap();
            let Some(end) = page.last().map(|s| s.seq) else {
                break;
            };
            paged.extend(page);
            from = end;
        }
        assert_eq!(paged, got);
    }
}

/// store.md §1.2: a store written by schema version 1 opens, is migrated to 2 in
/// place, keeps every record, and takes epochs and snapshots from then on.
#[test]
fn a_version_1_store_is_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zgate.redb");
    let (journal, _) = journal_of(31);
    zgate::store::testing::write_version_1(&path, &journal).unwrap();
    let mut store = Store::open_with_segments(&path, SEGMENT).unwrap();
    assert_eq!(store.load().unwrap(), journal);
    let audit: Vec<_> = journal
        .iter()
        .filter_map(|r| match r {
            Record::Audit(e) => Some(e.clone()),
            _ => None,
        })
        .collect();
    assert!(!audit.is_empty());
    assert_eq!(store.audit_entries().unwrap(), audit);
    assert_eq!(store.epoch(), 0);
    assert_eq!(store.begin_epoch().unwrap(), 1);
    let state = Engine::replay(Default::default(), &journal).state().clone();
    store.snapshot(journal.len() as u64, &state, 0).unwrap();
    drop(store);
    let store = Store::open(&path).unwrap();
    let recovered = store.recover().unwrap();
    assert_eq!(recovered.snapshot.map(|(_, s)| s), Some(state));
    assert!(recovered.tail.is_empty());
    let err = store.reader().since(0, 1).unwrap_err();
    assert!(
        matches!(err, StoreError::Compacted { after: 0, .. }),
        "{err}"
    );
}

/// A copy of the store in `testdata/store/<name>` in a temp dir: the fixture's
/// directory, the temp dir and the copy's path.
fn fixture_copy(name: &str) -> (std::path::PathBuf, tempfile::TempDir, std::path::PathBuf) {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/store")
        .join(name);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zgate.redb");
    std::fs::copy(fixture.join("zgate.redb"), &path).unwrap();
    (fixture, dir, path)
}

/// store.md §1.2: a store that zgate wrote in schema version 2 (`zgate demo --keep`,
/// testdata/store/v2-demo) opens, is migrated to 3, keeps every record, and the
/// gateway started on it snapshots it at once, shows the same sessions, and from then
/// on writes a change to a session as the change.
#[test]
fn a_version_2_store_written_by_zgate_is_migrated() {
    let (fixture, dir, path) = fixture_copy("v2-demo");
    // A clone does not keep file modes, and the key loader refuses a key others can read.
    let key_path = dir.path().join("sealing.key");
    std::fs::copy(fixture.join("sealing.key"), &key_path).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let key = zgate::store::sealing::SealingKey::from_file(&key_path).unwrap();

    let store = Store::open(&path).unwrap();
    assert_eq!(store.migrated_from(), Some(2));
    let journal = store.load().unwrap();
    assert!(journal.iter().any(|r| matches!(r, Record::Session(_))));
    let before = Engine::replay(Default::default(), &journal).state().clone();
    assert!(!before.sessions.is_empty() && !before.users.is_empty());
    let audit = store.audit_entries().unwrap();
    assert!(!audit.is_empty());
    let last = store.last_seq();
    drop(store);
    assert_eq!(Store::open(&path).unwrap().migrated_from(), None);
    // The gateway gets a fresh copy, which it migrates itself.
    std::fs::copy(fixture.join("zgate.redb"), &path).unwrap();

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let gateway = zgate::gateway::Gateway::start(zgate::gateway::GatewayConfig {
            store: path.clone(),
            engine: Default::default(),
            clock: zgate::clock::Clock::starting_at_unix(1_767_225_600, 42),
            sealing_key: std::sync::Arc::new(key),
            storage_timeout: std::time::Duration::from_secs(30),
            bootstrap_admin: None,
            shutdown_grace: std::time::Duration::from_millis(100),
            snapshot_every: 0,
            standby_of: None,
            fence_domain: 0,
        })
        .unwrap();
        let handle = gateway.handle();
        let sessions = handle.read(|e| e.state().sessions.clone()).await.unwrap();
        assert_eq!(sessions, before.sessions);
        let name = sessions.keys().next().unwrap().clone();
        let admin = before
            .users
            .values()
            .find(|u| u.role == zgate::policy::access::Role::Administrator)
            .unwrap()
            .name
            .clone();
        let reply = handle
            .command(
                &admin,
                zgate::policy::engine::Command::SetDescription {
                    session: name.clone(),
                    description: "after the migration".into(),
                },
            )
            .await
            .unwrap();
        assert!(reply.message.text.contains("was changed"), "{reply:?}");
        let reader = handle.stream().unwrap();
        let written = reader.since(last, 100).unwrap();
        assert!(
            written.iter().any(|s| matches!(
                &s.record,
                Record::SessionChanged { name: n, .. } if *n == name
            )),
            "{written:?}"
        );
        gateway.shutdown().await;
    });
    let store = Store::open(&path).unwrap();
    let recovered = store.recover().unwrap();
    let (seq, snapshot) = recovered.snapshot.unwrap();
    assert_eq!(seq, last, "the migrated store is snapshotted at its end");
    assert_eq!(snapshot.sessions, before.sessions);
    assert_eq!(store.audit_entries().unwrap()[..audit.len()], audit[..]);
}

/// ha.md §5: a standby's store fed a full copy and then the active's records, in
/// batches of any size, holds exactly what the active's holds (the same sealed
/// bytes, sequence numbers, epochs, audit trail and state); a batch that does not
/// follow, goes back an epoch, or is damaged is refused whole and changes nothing;
/// a damaged full copy leaves the previous store as it was.
#[test]
fn a_standby_store_follows_the_active_record_for_record_and_refuses_what_does_not_fit() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, bounds) = journal_of(11);
    let mut active = Store::open(&dir.path().join("active.redb")).unwrap();
    active.begin_epoch().unwrap();
    let cut = bounds[bounds.len() / 2];
    active.append(&journal[..cut]).unwrap();
    let state_at_cut = Engine::replay(Default::default(), &journal[..cut])
        .state()
        .clone();
    active.snapshot(cut as u64, &state_at_cut, 0).unwrap();
    active.begin_epoch().unwrap();
    active.append(&journal[cut..]).unwrap();
    let reader = active.reader();

    let path = dir.path().join("standby.redb");
    let mut standby = Store::open(&path).unwrap();
    // The standby's own history, which the copy replaces.
    standby.begin_epoch().unwrap();
    standby.append(&journal[..3]).unwrap();
    // A damaged copy changes nothing.
    let (seq, sealed_state) = reader.snapshot_sealed().unwrap().unwrap();
    let audit = reader.audit_sealed_upto(seq).unwrap();
    let epochs = reader.epochs().unwrap();
    let mut damaged = sealed_state.clone();
    let at = damaged.len() / 2;
    damaged[at] ^= 0x20;
    assert!(standby.install(seq, &epochs, &audit, &damaged).is_err());
    assert_eq!(standby.last_seq(), 3);
    assert_eq!(standby.load().unwrap(), journal[..3].to_vec());
    standby
        .install(seq, &epochs, &audit, &sealed_state)
        .unwrap();

    let rest = reader.since_sealed(seq, usize::MAX, usize::MAX).unwrap();
    assert_eq!(rest.len(), journal.len() - cut);
    // Batches bounded in bytes: never past the bound but by a lone first record, and
    // read one after another they are the whole stream.
    let mut after = seq;
    let mut again = Vec::new();
    while after < active.last_seq() {
        let batch = reader.since_sealed(after, usize::MAX, 600).unwrap();
        let bytes: usize = batch.iter().map(|r| r.2.len()).sum();
        assert!(
            batch.len() == 1 || bytes <= 600,
            "{} records, {bytes} bytes",
            batch.len()
        );
        after = batch.last().unwrap().0;
        again.extend(batch);
    }
    assert_eq!(again, rest);
    let as_refs = |b: &[(u64, u64, Vec<u8>)]| -> Vec<(u64, u64, Vec<u8>)> { b.to_vec() };
    fn refs(b: &[(u64, u64, Vec<u8>)]) -> Vec<(u64, u64, &[u8])> {
        b.iter().map(|(s, e, x)| (*s, *e, x.as_slice())).collect()
    }
    // Refused whole: a gap, a repeat, an older epoch, a damaged record.
    let before = standby.last_seq();
    assert!(matches!(
        standby.append_replicated(&refs(&rest[1..3])),
        Err(StoreError::OutOfOrder { .. })
    ));
    let mut older = as_refs(&rest[..2]);
    older[1].1 = 0;
    assert!(matches!(
        standby.append_replicated(&refs(&older)),
        Err(StoreError::StaleEpoch { .. })
    ));
    let mut bad = as_refs(&rest[..2]);
    let last = bad[1].2.len() - 1;
    bad[1].2[last] ^= 1;
    assert!(matches!(
        standby.append_replicated(&refs(&bad)),
        Err(StoreError::Refused { .. })
    ));
    assert_eq!(standby.last_seq(), before, "a refused batch stored nothing");
    for chunk in rest.chunks(7) {
        standby.append_replicated(&refs(chunk)).unwrap();
    }
    assert!(matches!(
        standby.append_replicated(&refs(&rest[..1])),
        Err(StoreError::OutOfOrder { .. })
    ));
    drop(standby);

    let standby = Store::open(&path).unwrap();
    assert_eq!(standby.last_seq(), active.last_seq());
    assert_eq!(standby.epoch(), active.epoch());
    let theirs = standby.reader();
    assert_eq!(theirs.epochs().unwrap(), reader.epochs().unwrap());
    assert_eq!(
        theirs.since_sealed(seq, usize::MAX, usize::MAX).unwrap(),
        rest,
        "the same bytes, numbers and epochs"
    );
    assert_eq!(
        standby.audit_entries().unwrap(),
        active.audit_entries().unwrap()
    );
    let rebuilt = |s: &Store| {
        let r = s.recover().unwrap();
        let (_, mut state) = r.snapshot.unwrap();
        for record in &r.tail {
            state.apply(record);
        }
        state
    };
    assert_eq!(rebuilt(&standby), rebuilt(&active));
    assert_eq!(
        rebuilt(&standby),
        Engine::replay(Default::default(), &journal).state().clone()
    );
}

/// store.md §1.2: a store that zgate wrote in schema version 3
/// (testdata/store/v3-demo: the version-2 demo store migrated and snapshotted by it,
/// then one more change) opens as version 4, its whole-state snapshot moved into
/// parts: the snapshot at the same record, and with the records after it the same
/// state a replay of the whole journal builds.
#[test]
fn a_version_3_store_written_by_zgate_is_migrated() {
    let (_, _dir, path) = fixture_copy("v3-demo");
    let store = Store::open(&path).unwrap();
    assert_eq!(store.migrated_from(), Some(3));
    let journal = store.load().unwrap();
    assert_eq!(store.first_seq().unwrap(), 1, "never compacted");
    let full = Engine::replay(Default::default(), &journal).state().clone();
    let recovered = store.recover().unwrap();
    let (at, mut state) = recovered.snapshot.expect("version 3 held a snapshot");
    assert!(!state.sessions.is_empty() && !state.users.is_empty());
    assert!(
        recovered
            .tail
            .iter()
            .any(|r| matches!(r, Record::SessionChanged { .. })),
        "the change after the snapshot: {:?}",
        recovered.tail
    );
    assert_eq!(at + recovered.tail.len() as u64, store.last_seq());
    for r in &recovered.tail {
        state.apply(r);
    }
    assert_eq!(state, full);
    drop(store);
    let store = Store::open(&path).unwrap();
    assert_eq!(store.migrated_from(), None);
    assert_eq!(store.recover().unwrap().snapshot.map(|(s, _)| s), Some(at));
}

/// store.md §6.2 (issue 21): a snapshot writes the parts the records since the last
/// one touched, and the counters; after one small change to one session it writes
/// the same bytes whether the state holds a few sessions or thousands, and the
/// store then holds exactly the state at that record.
#[test]
fn a_snapshot_after_a_small_change_writes_the_same_bytes_however_many_sessions() {
    use zgate::policy::engine::delta::SessionChange;
    let (journal, state, name) = (1..)
        .map(journal_of)
        .find_map(|(journal, _)| {
            let state = Engine::replay(Default::default(), &journal).into_state();
            let name = state.sessions.keys().next()?.clone();
            Some((journal, state, name))
        })
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut written = Vec::new();
    for extra in [0usize, 5_000] {
        let mut state = state.clone();
        let template = state.sessions[&name].clone();
        for i in 0..extra {
            let mut s = template.clone();
            s.name = format!("BULK{i:05}");
            state.sessions.insert(s.name.clone(), s);
        }
        let mut store = Store::open(&dir.path().join(format!("{extra}.redb"))).unwrap();
        let seq = store.append(&journal).unwrap();
        store.snapshot(seq, &state, 0).unwrap();
        let change = Record::SessionChanged {
            name: name.clone(),
            changes: vec![SessionChange::Description("one small change".into())],
        };
        let seq = store.append(std::slice::from_ref(&change)).unwrap();
        state.apply(&change);
        let mut dirty = std::collections::BTreeSet::new();
        note_touched([&change], &mut dirty);
        let delta = SnapshotDelta::of(&state, &dirty).seal();
        assert_eq!(delta.parts.len(), 2, "the counters and the session");
        written.push(delta.bytes());
        store.snapshot_delta(seq, &delta, 0).unwrap();
        assert_eq!(store.reader().snapshot().unwrap(), Some((seq, state)));
    }
    assert_eq!(written[0], written[1], "bytes written: {written:?}");
}

/// store.md §6.2: the changes of a snapshot apply only on top of the snapshot
/// before them; changes older than the stored snapshot are refused and change
/// nothing.
#[test]
fn changes_older_than_the_stored_snapshot_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = journal_of(5);
    let mut store = Store::open(&dir.path().join("zgate.redb")).unwrap();
    let seq = store.append(&journal).unwrap();
    let state = Engine::replay(Default::default(), &journal).into_state();
    store.snapshot(seq, &state, 0).unwrap();
    let older = Engine::replay(Default::default(), &journal[..journal.len() / 2]).into_state();
    let all = zgate::store::parts::all_parts(&older);
    let delta = SnapshotDelta::of(&older, &all).seal();
    let err = store.snapshot_delta(seq - 1, &delta, 0).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    assert_eq!(store.reader().snapshot().unwrap(), Some((seq, state)));
}
