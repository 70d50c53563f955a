//! Group commit: many writers, one durable transaction per batch
//! (`protocol-specs/store.md` §3). Each writer hands its records to the committer
//! thread and waits; the committer takes every record waiting, writes them in one
//! transaction, and answers each writer with its records' last sequence number.

use std::sync::mpsc;
use std::thread;

use super::{Store, StoreError, seal};
use crate::policy::engine::Record;

/// The most records in one transaction.
const MAX_BATCH: usize = 4096;

type Reply = mpsc::SyncSender<Result<u64, String>>;

struct Job {
    sealed: Vec<Vec<u8>>,
    reply: Reply,
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
}

impl Committer {
    /// Starts the committer on `store`.
    pub fn spawn(store: Store) -> Result<(Committer, CommitHandle), StoreError> {
        let (jobs, rx) = mpsc::channel::<Job>();
        let thread = thread::Builder::new()
            .name("zgate-store".into())
            .spawn(move || run(store, rx))
            .map_err(|_| StoreError::Stopped)?;
        Ok((
            Committer {
                thread: Some(thread),
            },
            CommitHandle { jobs },
        ))
    }

    /// Waits for the thread to finish (every handle dropped) and returns the store.
    pub fn finish(mut self) -> Option<Store> {
        self.thread.take().and_then(|t| t.join().ok())
    }
}

impl CommitHandle {
    /// Stores `records` durably; returns the last one's sequence number. Blocks
    /// until the batch holding them is on disk.
    pub fn commit(&self, records: &[Record]) -> Result<u64, StoreError> {
        let sealed = records.iter().map(seal).collect();
        let (reply, answer) = mpsc::sync_channel(1);
        self.jobs
            .send(Job { sealed, reply })
            .map_err(|_| StoreError::Stopped)?;
        match answer.recv() {
            Ok(Ok(seq)) => Ok(seq),
            Ok(Err(what)) => Err(StoreError::Corrupt {
                path: "(committer)".into(),
                what,
            }),
            Err(_) => Err(StoreError::Stopped),
        }
    }
}

fn run(mut store: Store, rx: mpsc::Receiver<Job>) -> Store {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        let mut count = batch[0].sealed.len();
        while count < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => {
                    count += job.sealed.len();
                    batch.push(job);
                }
                Err(_) => break,
            }
        }
        let mut replies = Vec::with_capacity(batch.len());
        let mut sealed = Vec::with_capacity(count);
        for job in batch {
            replies.push((job.sealed.len() as u64, job.reply));
            sealed.extend(job.sealed);
        }
        let mut end = store.last_seq();
        match store.append_sealed(&sealed) {
            Ok(_) => {
                for (len, reply) in replies {
                    end += len;
                    let _ = reply.send(Ok(end));
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
    }
    store
}
