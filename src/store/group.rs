//! Group commit: many writers, one durable transaction per batch
//! (`protocol-specs/store.md` §3). Each writer hands its records to the committer
//! thread; the committer takes every record waiting, writes them in one
//! transaction, and answers each writer with its records' place in the journal. The
//! fsync happens on the committer's thread: an async writer awaits the answer and
//! its task's thread goes on with other work meanwhile. (The wait itself sits on
//! tokio's blocking pool, which also tells a paused test clock that work is under
//! way, so timers do not jump ahead while a batch is being written.)

use std::collections::VecDeque;
use std::sync::mpsc;
use std::thread;

use super::{SealedDelta, SnapshotDelta, Store, StoreError, seal};
use crate::policy::engine::Record;

/// The most records in one transaction.
const MAX_BATCH: usize = 4096;

/// Where a writer's records landed: they are durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Committed {
    /// The highest epoch the store had seen when they were written (the epoch each
    /// record carries is the `epochs` table's, store.md §6.1; the two differ only on
    /// a server fenced by a higher epoch).
    pub epoch: u64,
    /// The first one's sequence number (one past `last` when there were none).
    pub first: u64,
    /// The last one's sequence number.
    pub last: u64,
}

type Reply = mpsc::SyncSender<Result<Committed, String>>;

enum Records {
    Plain(Vec<Record>),
    Sealed(Vec<Vec<u8>>),
}

/// Work on the store itself, run on the committer's thread in order with the
/// batches (a standby's replicated records, a full copy, a takeover's epoch).
type StoreWork = Box<dyn FnOnce(&mut Store) -> Result<(), StoreError> + Send>;

enum Job {
    Run {
        work: StoreWork,
        reply: mpsc::SyncSender<Result<(), String>>,
    },
    Append {
        records: Records,
        reply: Reply,
    },
    Snapshot {
        seq: u64,
        /// Its parts, sealed by the sealer thread.
        sealed: SealedDelta,
        keep: u64,
        reply: mpsc::SyncSender<Result<(), String>>,
    },
}

/// A snapshot on its way to the sealer thread.
struct ToSeal {
    seq: u64,
    delta: SnapshotDelta,
    keep: u64,
    reply: mpsc::SyncSender<Result<(), String>>,
}

/// The committer thread's owner: dropping it (and every handle) stops the thread.
#[derive(Debug)]
pub struct Committer {
    thread: Option<thread::JoinHandle<Store>>,
}

/// A writer's end; clone one per writer.
#[derive(Debug, Clone)]
pub struct CommitHandle {
    jobs: mpsc::Sender<Job>,
    /// The sealer: serialises and seals a snapshot's parts off the committer's
    /// thread (a whole-box session takes tens of milliseconds, which would hold up
    /// every batch behind it), then hands them to the committer.
    to_seal: mpsc::Sender<ToSeal>,
    /// The bytes the last snapshot sealed wrote (0 before the first).
    sealed_bytes: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Committer {
    /// Starts the committer on `store`.
    pub fn spawn(store: Store) -> Result<(Committer, CommitHandle), StoreError> {
        Committer::spawn_watched(store, None)
    }

    /// [`Committer::spawn`], telling `durable` the last record's sequence number each
    /// time a batch is on disk (the HA stream sends what is durable as soon as it is,
    /// not when the batch is published; ha.md §5.3).
    pub fn spawn_watched(
        store: Store,
        durable: Option<tokio::sync::watch::Sender<u64>>,
    ) -> Result<(Committer, CommitHandle), StoreError> {
        let (jobs, rx) = mpsc::channel::<Job>();
        let (to_seal, sealing) = mpsc::channel::<ToSeal>();
        let sealed = jobs.clone();
        let sealed_bytes = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let size = sealed_bytes.clone();
        thread::Builder::new()
            .name("zgate-store".into())
            .spawn(move || seal_snapshots(&sealing, &sealed, &size))
            .map_err(|_| StoreError::Stopped)?;
        let thread = thread::Builder::new()
            .name("zgate-store".into())
            .spawn(move || run(store, rx, durable))
            .map_err(|_| StoreError::Stopped)?;
        Ok((
            Committer {
                thread: Some(thread),
            },
            CommitHandle {
                jobs,
                to_seal,
                sealed_bytes,
            },
        ))
    }

    /// Waits for the thread to finish (every handle dropped) and returns the store.
    pub fn finish(mut self) -> Option<Store> {
        self.thread.take().and_then(|t| t.join().ok())
    }
}

fn failed(what: String) -> StoreError {
    StoreError::Corrupt {
        path: "(committer)".into(),
        what,
    }
}

impl CommitHandle {
    /// Stores `records` durably; returns the last one's sequence number. Blocks
    /// until the batch holding them is on disk (call it from a thread, not a task).
    pub fn commit(&self, records: &[Record]) -> Result<u64, StoreError> {
        let sealed = records.iter().map(seal).collect();
        let answer = self.send(Records::Sealed(sealed))?;
        match answer.recv() {
            Ok(Ok(done)) => Ok(done.last),
            Ok(Err(what)) => Err(failed(what)),
            Err(_) => Err(StoreError::Stopped),
        }
    }

    /// Stores `records` durably (sealed on the committer's thread); the answer says
    /// where they landed, once they are on disk.
    pub async fn commit_async(&self, records: Vec<Record>) -> Result<Committed, StoreError> {
        self.submit(records)?.wait().await
    }

    /// Hands `records` to the committer now and returns at once: batches are written
    /// in the order they were handed in, so a writer may hand in its next batch
    /// before the last is durable, and learns of each with [`PendingCommit::wait`].
    pub fn submit(&self, records: Vec<Record>) -> Result<PendingCommit, StoreError> {
        Ok(PendingCommit {
            answer: self.send(Records::Plain(records))?,
        })
    }

    fn send(
        &self,
        records: Records,
    ) -> Result<mpsc::Receiver<Result<Committed, String>>, StoreError> {
        let (reply, answer) = mpsc::sync_channel(1);
        self.jobs
            .send(Job::Append { records, reply })
            .map_err(|_| StoreError::Stopped)?;
        Ok(answer)
    }

    /// Hands in `delta` (the parts of the state after record `seq` that changed
    /// since the snapshot handed in before it, or all of them) to be written as the
    /// snapshot, the journal compacted up to `seq - keep` (store.md §6), after every
    /// batch handed in before it.
    pub fn submit_snapshot(
        &self,
        seq: u64,
        delta: SnapshotDelta,
        keep: u64,
    ) -> Result<PendingSnapshot, StoreError> {
        let (reply, answer) = mpsc::sync_channel(1);
        self.to_seal
            .send(ToSeal {
                seq,
                delta,
                keep,
                reply,
            })
            .map_err(|_| StoreError::Stopped)?;
        Ok(PendingSnapshot { answer })
    }
}

impl CommitHandle {
    /// The bytes the last snapshot handed in since the committer started writes,
    /// sealed (0 before the first is sealed).
    pub fn last_snapshot_bytes(&self) -> u64 {
        self.sealed_bytes.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Runs `work` on the store, on the committer's thread, after every batch handed
    /// in before it; the answer says whether it succeeded. A failure does not stop
    /// the committer (the work says what it refused; nothing was stored).
    pub fn run(
        &self,
        work: impl FnOnce(&mut Store) -> Result<(), StoreError> + Send + 'static,
    ) -> Result<PendingSnapshot, StoreError> {
        let (reply, answer) = mpsc::sync_channel(1);
        self.jobs
            .send(Job::Run {
                work: Box::new(work),
                reply,
            })
            .map_err(|_| StoreError::Stopped)?;
        Ok(PendingSnapshot { answer })
    }
}

/// A batch handed to the committer, not yet known to be durable.
#[derive(Debug)]
pub struct PendingCommit {
    answer: mpsc::Receiver<Result<Committed, String>>,
}

impl PendingCommit {
    /// Waits until the batch is durable (or the committer failed).
    pub async fn wait(self) -> Result<Committed, StoreError> {
        let answer = self.answer;
        match tokio::task::spawn_blocking(move || answer.recv()).await {
            Ok(Ok(Ok(done))) => Ok(done),
            Ok(Ok(Err(what))) => Err(failed(what)),
            _ => Err(StoreError::Stopped),
        }
    }
}

impl PendingCommit {
    /// Waits until the first of `pending` is durable, then takes each one after it
    /// that is durable by then, in order, without waiting again. Answers their
    /// outcomes (one at least, unless `pending` is empty) and gives back the rest.
    /// One wait on tokio's blocking pool for many batches: a publisher behind a busy
    /// committer wakes once per transaction, not once per batch. The wait is on the
    /// blocking pool, not a oneshot the committer could wake directly, because a
    /// blocking task in flight is what keeps tokio's paused clock (the tests') from
    /// jumping ahead while the disk works: with a oneshot, requests on a paused clock
    /// time out before their commit is answered.
    pub async fn durable_prefix(
        mut pending: VecDeque<PendingCommit>,
    ) -> (Vec<Result<Committed, StoreError>>, VecDeque<PendingCommit>) {
        if pending.is_empty() {
            return (Vec::new(), pending);
        }
        let waited = tokio::task::spawn_blocking(move || {
            let mut outcomes = Vec::new();
            let mut first = true;
            while let Some(p) = pending.front() {
                let answer = if first {
                    first = false;
                    p.answer.recv().map_err(|_| ())
                } else {
                    match p.answer.try_recv() {
                        Ok(a) => Ok(a),
                        Err(mpsc::TryRecvError::Empty) => break,
                        Err(mpsc::TryRecvError::Disconnected) => Err(()),
                    }
                };
                pending.pop_front();
                outcomes.push(match answer {
                    Ok(Ok(done)) => Ok(done),
                    Ok(Err(what)) => Err(failed(what)),
                    Err(()) => Err(StoreError::Stopped),
                });
            }
            (outcomes, pending)
        })
        .await;
        match waited {
            Ok(done) => done,
            // The wait itself was lost (a runtime stopping): nothing is known durable.
            Err(_) => (vec![Err(StoreError::Stopped)], VecDeque::new()),
        }
    }
}

/// A snapshot handed to the committer, not yet written.
#[derive(Debug)]
pub struct PendingSnapshot {
    answer: mpsc::Receiver<Result<(), String>>,
}

impl PendingSnapshot {
    /// Waits until the snapshot is stored (or the committer failed).
    pub async fn wait(self) -> Result<(), StoreError> {
        let answer = self.answer;
        match tokio::task::spawn_blocking(move || answer.recv()).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(what))) => Err(failed(what)),
            _ => Err(StoreError::Stopped),
        }
    }
}

/// The sealer thread: each snapshot's parts serialised and sealed, then handed to
/// the committer. A snapshot at `seq` is handed in after every batch up to `seq`
/// (they were handed in before it), so it lands after them; batches handed in
/// meanwhile may land before it, which a snapshot allows (store.md §6).
fn seal_snapshots(
    sealing: &mpsc::Receiver<ToSeal>,
    committer: &mpsc::Sender<Job>,
    size: &std::sync::atomic::AtomicU64,
) {
    while let Ok(ToSeal {
        seq,
        delta,
        keep,
        reply,
    }) = sealing.recv()
    {
        let sealed = delta.seal();
        drop(delta);
        size.store(sealed.bytes(), std::sync::atomic::Ordering::Relaxed);
        let job = Job::Snapshot {
            seq,
            sealed,
            keep,
            reply,
        };
        if committer.send(job).is_err() {
            return;
        }
    }
}

fn run(
    mut store: Store,
    rx: mpsc::Receiver<Job>,
    durable: Option<tokio::sync::watch::Sender<u64>>,
) -> Store {
    let mut next = rx.recv().ok();
    while let Some(job) = next.take() {
        let (records, reply) = match job {
            Job::Run { work, reply } => {
                let _ = reply.send(work(&mut store).map_err(|e| e.to_string()));
                next = rx.recv().ok();
                continue;
            }
            Job::Snapshot {
                seq,
                sealed,
                keep,
                reply,
            } => {
                let result = store.snapshot_delta(seq, &sealed, keep);
                let stop = result.is_err();
                let _ = reply.send(result.map_err(|e| e.to_string()));
                if stop {
                    return store;
                }
                next = rx.recv().ok();
                continue;
            }
            Job::Append { records, reply } => (records, reply),
        };
        let mut batch = vec![(records, reply)];
        let mut count = batch[0].0.len();
        while count < MAX_BATCH {
            match rx.try_recv() {
                Ok(Job::Append { records, reply }) => {
                    count += records.len();
                    batch.push((records, reply));
                }
                Ok(snapshot) => {
                    // After this batch, in the order it came.
                    next = Some(snapshot);
                    break;
                }
                Err(_) => break,
            }
        }
        let mut replies = Vec::with_capacity(batch.len());
        let mut sealed = Vec::with_capacity(count);
        for (records, reply) in batch {
            replies.push((records.len() as u64, reply));
            match records {
                Records::Sealed(s) => sealed.extend(s),
                Records::Plain(r) => sealed.extend(r.iter().map(seal)),
            }
        }
        let mut end = store.last_seq();
        let epoch = store.epoch();
        match store.append_sealed(&sealed) {
            Ok(last) => {
                if let Some(d) = &durable {
                    d.send_replace(last);
                }
                for (len, reply) in replies {
                    let first = end + 1;
                    end += len;
                    let _ = reply.send(Ok(Committed {
                        epoch,
                        first,
                        last: end,
                    }));
                }
            }
            Err(e) => {
                let what = e.to_string();
                for (_, reply) in replies {
                    let _ = reply.send(Err(what.clone()));
                }
                // After a failed commit nothing more is acknowledged.
                return store;
            }
        }
        if next.is_none() {
            next = rx.recv().ok();
        }
    }
    store
}

impl Records {
    fn len(&self) -> usize {
        match self {
            Records::Plain(r) => r.len(),
            Records::Sealed(s) => s.len(),
        }
    }
}
